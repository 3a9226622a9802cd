// Fakes and helpers for users' own tests: they use real crypto, never network or hardware.
export { KeySigner } from '../provenance/keys';
