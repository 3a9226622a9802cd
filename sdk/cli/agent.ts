import type { Command } from 'commander';

/** Registers `edgewarden agent`. (Not yet implemented.) */
export function registerAgent(_program: Command): void {}
