/** Typed errors of the training floor: the nn floor's ConfigError is the one used everywhere. */
export { ConfigError } from '../nn/errors.js';
