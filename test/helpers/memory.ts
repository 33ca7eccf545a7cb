// The process's resident set size, for the memory hygiene tests (Linux: /proc/self/status).
import { readFileSync } from 'node:fs';

/** VmRSS in MiB. */
export const rssMb = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
