// Fakes and helpers for users' own tests: real crypto, no network, no hardware.
// Bundling: importing the package root here makes every module this entry shares with the root
// part of the root's chunks, rather than a chunk per combination of entries; each ES module costs a
// device ~2 ms to load, and `edgewarden/warden` then loads two files instead of eleven.
import '../index';

export { KeySigner } from '../provenance/keys';
export { defaultFakeCompute, FakeBackend, type FakeBackendOptions, type FakeCompute } from './fake-backend';
export { MemoryPublisher, type PublishedHeartbeat } from './memory-publisher';
export {
  applyChannelFaults,
  type ChannelFaults,
  createMemoryTransportPair,
  type Direction,
  MemoryLink,
  MemoryTransport,
  seededRandom,
} from './memory-transport';
