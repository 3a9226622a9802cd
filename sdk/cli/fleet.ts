import type { Command } from 'commander';

/** Registers `edgewarden fleet`. (Not yet implemented.) */
export function registerFleet(_program: Command): void {}
