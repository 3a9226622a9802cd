import type { Command } from 'commander';

/** Registers `edgewarden demo`. (Not yet implemented.) */
export function registerDemo(_program: Command): void {}
