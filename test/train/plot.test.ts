// Loss-curve SVG and metrics reader: structure of the picture, skipped non-finite points,
// malformed lines named, atomic write into the run folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { FormatError } from '../../src/errors.js';
import { plotRun, readMetrics, renderLossCurveSvg } from '../../src/train/plot.js';

test('svg has axes labels, ticks, legend and skips NaN points', () => {
  const svg = renderLossCurveSvg([
    { name: 'train loss', points: [{ step: 1, value: 5 }, { step: 2, value: Number.NaN }, { step: 3, value: 3 }] },
    { name: 'eval loss', points: [{ step: 3, value: 3.5 }] },
  ], { title: 'run' });
  assert.match(svg, /^<svg /);
  assert.match(svg, />train loss</);
  assert.match(svg, />eval loss</);
  assert.match(svg, />step</);
  assert.ok(!svg.includes('NaN'));
  assert.equal((svg.match(/<circle/g) ?? []).length, 2);
  const one = renderLossCurveSvg([{ name: 'a', points: [{ step: 0, value: 1e9 }] }], { logY: true });
  assert.ok(!one.includes('NaN') && !one.includes('Infinity'));
});

test('plotRun reads metrics.jsonl and writes loss.svg; bad lines are named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qlora-plot-'));
  try {
    const lines = [];
    for (let s = 1; s <= 50; s++) lines.push(JSON.stringify({ type: 'train', step: s, loss: 6 / Math.sqrt(s), lr: 2e-4, grad_norm: 1, tokens_per_s: 100, epoch: 0, time_s: s }));
    for (let s = 10; s <= 50; s += 10) lines.push(JSON.stringify({ type: 'eval', step: s, loss: 6.5 / Math.sqrt(s), perplexity: Math.exp(6.5 / Math.sqrt(s)) }));
    writeFileSync(join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
    assert.deepEqual(plotRun(dir), { file: join(dir, 'loss.svg'), train: 50, eval: 5 });
    assert.match(readFileSync(join(dir, 'loss.svg'), 'utf8'), /eval loss/);
    writeFileSync(join(dir, 'metrics.jsonl'), lines[0] + '\n{"type":"train"}\n');
    assert.throws(() => readMetrics(join(dir, 'metrics.jsonl')), (e: unknown) => e instanceof FormatError && /line 2/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
