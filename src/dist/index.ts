/** The distributed floor: launcher detection, process groups, data parallelism, the workers launcher. */
export * from './errors.js';
export * from './env.js';
export * from './group.js';
export { TcpGroup, type TcpGroupOptions } from './tcp.js';
export { MpiGroup, mpiAvailable } from './mpi.js';
export * from './ddp.js';
export * from './training.js';
export * from './launch.js';
