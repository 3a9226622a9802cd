/* ew_link: COBS, CRC-32C and the streaming frame receiver/transmitter. See ew_link.h. */
#include "ew_link.h"

/*
 * CRC-32C, four bits at a time: a 64-byte table instead of 1 KB costs little speed on a
 * microcontroller and leaves flash for the application.
 */
static const uint32_t CRC_NIBBLE[16] = {
    0x00000000u, 0x105EC76Fu, 0x20BD8EDEu, 0x30E349B1u, 0x417B1DBCu, 0x5125DAD3u,
    0x61C69362u, 0x7198540Du, 0x82F63B78u, 0x92A8FC17u, 0xA24BB5A6u, 0xB21572C9u,
    0xC38D26C4u, 0xD3D3E1ABu, 0xE330A81Au, 0xF36E6F75u,
};

uint32_t ew_crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t c = ~crc;
    size_t i;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        c = (c >> 4) ^ CRC_NIBBLE[c & 0x0Fu];
        c = (c >> 4) ^ CRC_NIBBLE[c & 0x0Fu];
    }
    return ~c;
}

/*
 * COBS over the concatenation a[0..an) || b[0..bn), so a frame (payload || crc) is encoded without
 * staging it. Returns the encoded length, or 0 when cap is too small.
 */
static size_t cobs_encode2(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, uint8_t *out,
                           size_t cap)
{
    size_t total = an + bn;
    size_t code_at = 0;
    size_t o = 1;
    uint8_t code = 1;
    size_t i;
    if (cap == 0) return 0;
    for (i = 0; i < total; i++) {
        uint8_t v = i < an ? a[i] : b[i - an];
        if (v == 0) {
            out[code_at] = code;
            if (o >= cap) return 0;
            code_at = o++;
            code = 1;
        } else {
            if (o >= cap) return 0;
            out[o++] = v;
            code++;
            if (code == 0xFF) {
                out[code_at] = code;
                code = 1;
                /* A full block at the very end is not followed by an empty block. */
                if (i + 1 == total) return o;
                if (o >= cap) return 0;
                code_at = o++;
            }
        }
    }
    out[code_at] = code;
    return o;
}

size_t ew_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    return cobs_encode2(in, n, NULL, 0, out, cap);
}

bool ew_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t i = 0;
    size_t o = 0;
    while (i < n) {
        uint8_t code = in[i++];
        uint8_t k;
        if (code == 0) return false;
        if ((size_t)(code - 1) > n - i) return false;
        for (k = 1; k < code; k++) {
            if (in[i] == 0 || o >= cap) return false;
            out[o++] = in[i++];
        }
        if (code != 0xFF && i < n) {
            if (o >= cap) return false;
            out[o++] = 0;
        }
    }
    *out_len = o;
    return true;
}

size_t ew_frame_encode(const uint8_t *payload, size_t n, uint8_t *out, size_t cap)
{
    uint32_t crc = ew_crc32c(0, payload, n);
    uint8_t tail[EW_CRC_LEN];
    size_t len;
    tail[0] = (uint8_t)crc;
    tail[1] = (uint8_t)(crc >> 8);
    tail[2] = (uint8_t)(crc >> 16);
    tail[3] = (uint8_t)(crc >> 24);
    len = cobs_encode2(payload, n, tail, EW_CRC_LEN, out, cap);
    if (len == 0 || len >= cap) return 0;
    out[len] = 0;
    return len + 1;
}

/* ---- receiver ---- */

static void rx_reset(ew_rx *rx)
{
    rx->len = 0;
    rx->left = 0;
    rx->zero_pending = false;
    rx->discarding = false;
    rx->started = false;
}

static void bump(uint32_t *counter)
{
    if (*counter != UINT32_MAX) (*counter)++;
}

void ew_rx_init(ew_rx *rx, uint8_t *buf, size_t cap)
{
    rx->buf = buf;
    rx->cap = cap;
    rx->stats.frames = 0;
    rx->stats.crc_errors = 0;
    rx->stats.oversize = 0;
    rx->stats.malformed = 0;
    rx_reset(rx);
}

static void rx_store(ew_rx *rx, uint8_t b)
{
    if (rx->len >= rx->cap) {
        bump(&rx->stats.oversize);
        rx->discarding = true;
        return;
    }
    rx->buf[rx->len++] = b;
}

bool ew_rx_byte(ew_rx *rx, uint8_t b, const uint8_t **payload, size_t *len)
{
    if (b == 0) {
        /* End of frame: always resynchronises, whatever state we were in. */
        bool started = rx->started;
        bool bad = rx->discarding;
        bool ok = false;
        if (started && !bad) {
            if (rx->left != 0 || rx->len < EW_CRC_LEN) {
                bump(&rx->stats.malformed);
            } else {
                size_t n = rx->len - EW_CRC_LEN;
                const uint8_t *t = rx->buf + n;
                uint32_t want = (uint32_t)t[0] | ((uint32_t)t[1] << 8) | ((uint32_t)t[2] << 16) |
                                ((uint32_t)t[3] << 24);
                if (ew_crc32c(0, rx->buf, n) != want) {
                    bump(&rx->stats.crc_errors);
                } else {
                    bump(&rx->stats.frames);
                    *payload = rx->buf;
                    *len = n;
                    ok = true;
                }
            }
        }
        rx_reset(rx);
        return ok;
    }
    rx->started = true;
    if (rx->discarding) return false;
    if (rx->left == 0) {
        /* A code byte: the block before it (unless it was full) stood for a 0x00. */
        if (rx->zero_pending) {
            rx_store(rx, 0);
            if (rx->discarding) return false;
        }
        rx->left = (uint8_t)(b - 1);
        rx->zero_pending = b != 0xFF;
        return false;
    }
    rx_store(rx, b);
    rx->left--;
    return false;
}

/* ---- transmitter ---- */

void ew_tx_init(ew_tx *tx, ew_write_fn write, void *ctx)
{
    tx->write = write;
    tx->ctx = ctx;
    ew_tx_begin(tx);
}

void ew_tx_begin(ew_tx *tx)
{
    tx->crc = 0;
    tx->payload_len = 0;
    tx->n = 0;
    tx->after_full = false;
}

static void tx_flush(ew_tx *tx)
{
    tx->block[0] = (uint8_t)(tx->n + 1u);
    tx->write(tx->ctx, tx->block, (size_t)tx->n + 1u);
    tx->n = 0;
}

static void tx_cobs(ew_tx *tx, uint8_t b)
{
    if (b == 0) {
        tx_flush(tx);
        tx->after_full = false;
        return;
    }
    tx->block[++tx->n] = b;
    if (tx->n == 254) {
        tx_flush(tx);
        tx->after_full = true;
    } else {
        tx->after_full = false;
    }
}

void ew_tx_put(ew_tx *tx, const uint8_t *p, size_t n)
{
    size_t i;
    tx->crc = ew_crc32c(tx->crc, p, n);
    tx->payload_len += n;
    for (i = 0; i < n; i++) tx_cobs(tx, p[i]);
}

void ew_tx_end(ew_tx *tx)
{
    static const uint8_t zero = 0;
    uint32_t c = tx->crc;
    uint8_t i;
    for (i = 0; i < EW_CRC_LEN; i++) tx_cobs(tx, (uint8_t)(c >> (8u * i)));
    /* A full block that ends the data needs no empty block after it. */
    if (!(tx->after_full && tx->n == 0)) tx_flush(tx);
    tx->write(tx->ctx, &zero, 1);
    ew_tx_begin(tx);
}
