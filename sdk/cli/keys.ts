import type { Command } from 'commander';

/** Registers `edgewarden keys`. (Not yet implemented.) */
export function registerKeys(_program: Command): void {}
