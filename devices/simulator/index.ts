// The virtual MCU and its audio tools (`edgewarden/devices`).
export { generateSilence, generateSpeechLike, type SpeechOptions } from './audio-gen';
export { SIM_ACTUATORS, SIM_SENSORS, VirtualMcu, type VirtualMcuEvents, type VirtualMcuOptions } from './virtual-mcu';
export { readWav, toMono, type WavAudio, writeWav } from './wav';
