import type { Command } from 'commander';

/** Registers `edgewarden device`. (Not yet implemented.) */
export function registerDevice(_program: Command): void {}
