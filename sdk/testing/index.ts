// Fakes and helpers for users' own tests: real crypto, no network, no hardware.
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
