// The registry of benchmark suites, in the order `npm run bench` runs them when none is named.
// Each suite lives in its own file in this folder; add it here.
import type { BenchSuite } from '../harness.js';
import { kernelsSuite } from './kernels.js';
import { modelSuite } from './model.js';
import { quantSuite } from './quant.js';
import { scaleSuite } from './scale.js';
import { trainSuite } from './train.js';

export const SUITES: BenchSuite[] = [kernelsSuite, quantSuite, modelSuite, trainSuite, scaleSuite];
