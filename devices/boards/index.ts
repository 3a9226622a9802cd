export { detectBoard } from './detect';
export { readHealth } from './health';
export type { BoardFamily, BoardHealth, BoardProfile } from './profile';
