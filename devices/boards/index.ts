export { detectBoard } from './detect';
export { readHealth } from './health';
export { registerDetectedBoard } from './hints';
export type { BoardFamily, BoardHealth, BoardProfile } from './profile';
