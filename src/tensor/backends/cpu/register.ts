/** Registers the CPU implementations of every primitive kernel under backend name `cpu`. */
import { registerKernel } from '../../backend.js';
import { matmulCpu } from './bmm.js';
import { binaryCpu, castCpu, copyCpu, unaryCpu, whereCpu } from './elementwise.js';
import { fftConvCpu } from './fftconv.js';
import { concatCpu, gatherCpu, indexAddCpu, indexSelectCpu, padCpu, scatterAddCpu } from './index.js';
import { argmaxCpu, reduceCpu, softmaxCpu } from './reduce.js';

registerKernel('unary', 'cpu', unaryCpu);
registerKernel('binary', 'cpu', binaryCpu);
registerKernel('where', 'cpu', whereCpu);
registerKernel('reduce', 'cpu', reduceCpu);
registerKernel('argmax', 'cpu', argmaxCpu);
registerKernel('softmax', 'cpu', softmaxCpu);
registerKernel('matmul', 'cpu', matmulCpu);
registerKernel('indexSelect', 'cpu', indexSelectCpu);
registerKernel('indexAdd', 'cpu', indexAddCpu);
registerKernel('gather', 'cpu', gatherCpu);
registerKernel('scatterAdd', 'cpu', scatterAddCpu);
registerKernel('concat', 'cpu', concatCpu);
registerKernel('pad', 'cpu', padCpu);
registerKernel('cast', 'cpu', castCpu);
registerKernel('copy', 'cpu', copyCpu);
registerKernel('fftConv', 'cpu', fftConvCpu);
