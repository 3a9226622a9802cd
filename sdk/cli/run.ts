import type { Command } from 'commander';

/** Registers `edgewarden run`. (Not yet implemented.) */
export function registerRun(_program: Command): void {}
