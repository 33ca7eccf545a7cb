// The registry of fuzz targets, one per format, in the order `npm run fuzz` runs them.

import type { FuzzTarget } from './harness.js';
import { bnbTarget, ggufTarget, safetensorsTarget } from './targets-binary.js';
import { configTarget, peftTarget, tokenizerTarget } from './targets-json.js';
import { datasetTarget } from './targets-data.js';

export const FUZZ_TARGETS: ReadonlyArray<FuzzTarget<unknown>> = [safetensorsTarget, ggufTarget, configTarget, tokenizerTarget, peftTarget, bnbTarget, datasetTarget] as ReadonlyArray<FuzzTarget<unknown>>;
