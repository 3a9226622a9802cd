/** Error codes of the serial link area (framing, messages, session, serial port, simulator), with what each means. */
export const LINK_CODES = {
  EW_LINK_COBS: 'A frame is not valid COBS (a code byte points past the end of the frame).',
  EW_LINK_CRC: 'A frame is too short for its CRC-32C or its CRC-32C does not match the payload.',
  EW_LINK_OVERSIZE: 'A payload is larger than the maximum the receiver accepts (MAX_PAYLOAD or the peer Hello).',
  EW_LINK_MALFORMED: 'Payload bytes that do not decode as a LinkMessage, or a LinkMessage without a known body.',
  EW_LINK_INVALID_MESSAGE: 'A message to send has a field out of range (seq or id not a uint32, bad enum, ...).',
  EW_LINK_PROTOCOL_VERSION: 'The firmware speaks another link protocol version than this host; the session is refused.',
  EW_LINK_HANDSHAKE: 'The device did not answer the Hello request with a Hello.',
  EW_LINK_TIMEOUT: 'A request got no Ack, Nack or answer after all its retries.',
  EW_LINK_NACK: 'The firmware refused a request; details.reason holds its NackReason code.',
  EW_LINK_UNEXPECTED_ANSWER: 'A request was answered with a body that does not fit it.',
  EW_LINK_DISCONNECTED: 'The transport went away (unplugged, closed, silent peer) while a request was pending.',
  EW_LINK_CLOSED: 'The session or transport was closed by this side.',
  EW_LINK_NOT_OPEN: 'A write or request on a transport or session that is not open.',
  EW_LINK_OPEN: 'A serial port could not be opened (missing, busy, no permission).',
  EW_LINK_WRITE: 'Writing to the transport failed.',
  EW_LINK_PORT_NOT_FOUND: 'No serial port matches the requested path or USB vendor/product id.',
  EW_LINK_RECORDING: 'A serial recording file is not valid or does not match the session being replayed.',
  EW_LINK_WAV: 'A WAV file is not valid or not a supported format (PCM 8/16/24/32-bit or float32).',
} as const;

export type LinkCode = keyof typeof LINK_CODES;
