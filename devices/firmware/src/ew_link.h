/*
 * ew_link: the framing layer of the edgewarden serial link, MCU side.
 *
 * A frame on the wire is COBS(payload || crc32c(payload) as u32 little-endian) || 0x00.
 * CRC-32C is Castagnoli (reflected polynomial 0x82F63B78, init and xorout 0xFFFFFFFF).
 *
 * Portable C99, no malloc, no globals: every piece of state lives in a struct the caller owns,
 * so the RAM use is exactly sizeof() of the structs you declare (see README.md).
 */
#ifndef EW_LINK_H
#define EW_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of CRC appended to every payload. */
#define EW_CRC_LEN 4u

/* Worst-case encoded size of a frame carrying `payload_len` bytes, including the trailing 0x00. */
#define EW_FRAME_MAX_ENCODED(payload_len) \
    ((payload_len) + EW_CRC_LEN + ((payload_len) + EW_CRC_LEN) / 254u + 2u)

/* CRC-32C over p[0..n), continuing from `crc` (pass 0 to start a fresh checksum). */
uint32_t ew_crc32c(uint32_t crc, const uint8_t *p, size_t n);

/*
 * COBS-encodes in[0..n) into out (no trailing 0x00). Returns the encoded length, or 0 when `cap`
 * is too small. A block of 254 non-zero bytes that ends the input is not followed by an empty
 * 0x01 block (the common modern form); the decoder accepts both forms.
 */
size_t ew_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/*
 * COBS-decodes in[0..n) (no 0x00 inside, no trailing 0x00) into out. Returns true and sets
 * *out_len on success; false on a malformed block or when `cap` is too small.
 */
bool ew_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len);

/*
 * Builds a whole frame (COBS + CRC + 0x00) in memory. Returns its length, or 0 when `cap` is too
 * small (EW_FRAME_MAX_ENCODED(n) is always enough).
 */
size_t ew_frame_encode(const uint8_t *payload, size_t n, uint8_t *out, size_t cap);

/* ---- Streaming receiver --------------------------------------------------------------------- */

/* Error and traffic counters of a receiver. They saturate instead of wrapping. */
typedef struct ew_rx_stats {
    uint32_t frames;      /* good frames delivered */
    uint32_t crc_errors;  /* CRC mismatch: dropped */
    uint32_t oversize;    /* longer than the buffer: dropped */
    uint32_t malformed;   /* bad COBS structure, or too short to hold a CRC: dropped */
} ew_rx_stats;

/*
 * Decodes COBS on the fly into a caller-provided buffer of `cap` bytes, which must hold the
 * largest payload plus EW_CRC_LEN. It never holds more than one frame: bytes past `cap` are
 * discarded until the next 0x00, which always resynchronises.
 */
typedef struct ew_rx {
    uint8_t *buf;
    size_t cap;
    size_t len;           /* decoded bytes of the frame in progress */
    uint8_t left;         /* data bytes left in the current COBS block; 0: next byte is a code */
    bool zero_pending;    /* the previous block implies a 0x00 before the next block */
    bool discarding;      /* this frame is bad already: skip to the next 0x00 */
    bool started;         /* at least one byte of this frame seen */
    ew_rx_stats stats;
} ew_rx;

void ew_rx_init(ew_rx *rx, uint8_t *buf, size_t cap);

/*
 * Feeds one byte. Returns true when it completed a good frame: *payload and *len then describe
 * the payload (CRC stripped) inside rx->buf, valid until the next call.
 */
bool ew_rx_byte(ew_rx *rx, uint8_t b, const uint8_t **payload, size_t *len);

/* ---- Streaming transmitter ------------------------------------------------------------------ */

/* Where a transmitter's encoded bytes go (a UART, a USB CDC endpoint, a file, a test buffer). */
typedef void (*ew_write_fn)(void *ctx, const uint8_t *p, size_t n);

/*
 * COBS-encodes a frame while the payload is produced, with one 255-byte block of lookahead, so a
 * large payload (a SensorBatch) never needs a buffer of its own.
 */
typedef struct ew_tx {
    ew_write_fn write;
    void *ctx;
    uint32_t crc;         /* running CRC-32C state of the payload (pre-inversion) */
    size_t payload_len;
    uint8_t block[255];   /* block[0] is the code byte, filled on flush */
    uint8_t n;            /* data bytes in block */
    bool after_full;      /* the previous block was a full 0xFF block */
} ew_tx;

void ew_tx_init(ew_tx *tx, ew_write_fn write, void *ctx);
void ew_tx_begin(ew_tx *tx);
void ew_tx_put(ew_tx *tx, const uint8_t *p, size_t n);
/* Appends the CRC, flushes the last block and writes the 0x00 delimiter. */
void ew_tx_end(ew_tx *tx);

#ifdef __cplusplus
}
#endif

#endif /* EW_LINK_H */
