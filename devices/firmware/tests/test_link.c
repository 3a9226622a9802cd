/* COBS, CRC-32C and the streaming receiver/transmitter. */
#include <string.h>

#include "../src/ew_link.h"
#include "tt.h"

static void t_crc_vectors(void)
{
    uint8_t buf[32];
    size_t i;
    const uint8_t *check = (const uint8_t *)"123456789";
    CHECK(ew_crc32c(0, check, 9) == 0xE3069283u);
    CHECK(ew_crc32c(0, NULL, 0) == 0u);
    CHECK(ew_crc32c(0, (const uint8_t *)"a", 1) == 0xC1D04330u);
    /* Continuing a CRC equals computing it in one go. */
    CHECK(ew_crc32c(ew_crc32c(0, check, 4), check + 4, 5) == 0xE3069283u);
    /* RFC 3720 (iSCSI) B.4 vectors. */
    memset(buf, 0, sizeof buf);
    CHECK(ew_crc32c(0, buf, 32) == 0x8A9136AAu);
    memset(buf, 0xFF, sizeof buf);
    CHECK(ew_crc32c(0, buf, 32) == 0x62A8AB43u);
    for (i = 0; i < 32; i++) buf[i] = (uint8_t)i;
    CHECK(ew_crc32c(0, buf, 32) == 0x46DD794Eu);
    for (i = 0; i < 32; i++) buf[i] = (uint8_t)(31 - i);
    CHECK(ew_crc32c(0, buf, 32) == 0x113FDB5Cu);
}

typedef struct vec {
    const char *in;
    const char *out;
} vec;

/* Encodes hex `in`, compares with hex `out`, decodes back. */
static void cobs_case(const uint8_t *in, size_t n, const uint8_t *want, size_t want_n)
{
    uint8_t enc[600], dec[600];
    size_t len = ew_cobs_encode(in, n, enc, sizeof enc);
    size_t dlen = 0;
    CHECK(len == want_n);
    CHECK(len == want_n && memcmp(enc, want, want_n) == 0);
    CHECK(memchr(enc, 0, len) == NULL);
    CHECK(ew_cobs_decode(enc, len, dec, sizeof dec, &dlen));
    CHECK(dlen == n && memcmp(dec, in, n) == 0);
}

static void t_cobs_vectors(void)
{
    /* The examples of the COBS article (Cheshire & Baker; Wikipedia's table). */
    static const vec v[] = {
        {"", "01"},
        {"00", "0101"},
        {"0000", "010101"},
        {"001100", "01021101"},
        {"11220033", "0311220233"},
        {"11223344", "0511223344"},
        {"11000000", "0211010101"},
    };
    size_t i;
    uint8_t in[300], want[300];
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        long n = tt_hex(v[i].in, in, sizeof in);
        long m = tt_hex(v[i].out, want, sizeof want);
        CHECK(n >= 0 && m >= 0);
        cobs_case(in, (size_t)n, want, (size_t)m);
    }
    /* 01..FE (254 bytes): one full block, no empty block after it. */
    for (i = 0; i < 254; i++) in[i] = (uint8_t)(i + 1);
    want[0] = 0xFF;
    memcpy(want + 1, in, 254);
    cobs_case(in, 254, want, 255);
    /* 00 01..FE (255 bytes) -> 01 FF 01..FE */
    in[0] = 0;
    for (i = 1; i < 255; i++) in[i] = (uint8_t)i;
    want[0] = 0x01;
    want[1] = 0xFF;
    memcpy(want + 2, in + 1, 254);
    cobs_case(in, 255, want, 256);
    /* 01..FF (255 bytes) -> FF 01..FE 02 FF */
    for (i = 0; i < 255; i++) in[i] = (uint8_t)(i + 1);
    want[0] = 0xFF;
    memcpy(want + 1, in, 254);
    want[255] = 0x02;
    want[256] = 0xFF;
    cobs_case(in, 255, want, 257);
    /* 02..FF 00 (255 bytes) -> FF 02..FF 01 01 */
    for (i = 0; i < 254; i++) in[i] = (uint8_t)(i + 2);
    in[254] = 0;
    want[0] = 0xFF;
    memcpy(want + 1, in, 254);
    want[255] = 0x01;
    want[256] = 0x01;
    cobs_case(in, 255, want, 257);
    /* 03..FF 00 01 (255 bytes) -> FE 03..FF 02 01 */
    for (i = 0; i < 253; i++) in[i] = (uint8_t)(i + 3);
    in[253] = 0;
    in[254] = 1;
    want[0] = 0xFE;
    memcpy(want + 1, in, 253);
    want[254] = 0x02;
    want[255] = 0x01;
    cobs_case(in, 255, want, 256);
}

static void t_cobs_rejects(void)
{
    uint8_t out[16];
    size_t len;
    static const uint8_t zero_inside[] = {0x03, 0x11, 0x00};
    static const uint8_t short_block[] = {0x05, 0x11, 0x22};
    static const uint8_t lead_zero[] = {0x00};
    static const uint8_t ok[] = {0x05, 0x11, 0x22, 0x33, 0x44};
    /* The classic form with an empty block after a full one decodes to the same bytes. */
    uint8_t classic[256], in[254], dec[300];
    size_t i;
    CHECK(!ew_cobs_decode(zero_inside, sizeof zero_inside, out, sizeof out, &len));
    CHECK(!ew_cobs_decode(short_block, sizeof short_block, out, sizeof out, &len));
    CHECK(!ew_cobs_decode(lead_zero, sizeof lead_zero, out, sizeof out, &len));
    CHECK(!ew_cobs_decode(ok, sizeof ok, out, 3, &len)); /* does not fit */
    CHECK(ew_cobs_decode(ok, sizeof ok, out, 4, &len) && len == 4);
    CHECK(ew_cobs_encode(ok, 4, out, 4) == 0);             /* encoder: does not fit */
    for (i = 0; i < 254; i++) in[i] = (uint8_t)(i + 1);
    classic[0] = 0xFF;
    memcpy(classic + 1, in, 254);
    classic[255] = 0x01;
    CHECK(ew_cobs_decode(classic, 256, dec, sizeof dec, &len) && len == 254 &&
          memcmp(dec, in, 254) == 0);
}

/* Collects transmitter output. */
typedef struct sink {
    uint8_t buf[4096];
    size_t len;
} sink;

static void sink_write(void *ctx, const uint8_t *p, size_t n)
{
    sink *s = (sink *)ctx;
    if (n > sizeof s->buf - s->len) n = sizeof s->buf - s->len;
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

/* Feeds a byte string to a receiver; returns the number of frames delivered. */
static int feed(ew_rx *rx, const uint8_t *p, size_t n, uint8_t *last, size_t *last_len)
{
    int frames = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        const uint8_t *pl;
        size_t len;
        CHECK(rx->len <= rx->cap);
        if (ew_rx_byte(rx, p[i], &pl, &len)) {
            frames++;
            if (last) memcpy(last, pl, len);
            if (last_len) *last_len = len;
        }
    }
    return frames;
}

static void t_frame_roundtrip(void)
{
    /* Every length 0..1100, random content with many zeros or none: the in-memory encoder and
       the streaming transmitter agree byte for byte, and the receiver gets the payload back. */
    static uint8_t payload[1100], frame[1200], got[1200], rxbuf[1100 + 4];
    uint32_t seed = 12345;
    size_t n;
    for (n = 0; n <= 1100; n += (n < 600 ? 1 : 7)) {
        size_t i, flen, glen = 0;
        sink s;
        ew_tx tx;
        ew_rx rx;
        int mode = (int)(n % 3);
        for (i = 0; i < n; i++) {
            uint32_t r = tt_rand(&seed);
            payload[i] = mode == 0 ? (uint8_t)r : mode == 1 ? (uint8_t)(1 + r % 255) : (uint8_t)(r % 3);
        }
        flen = ew_frame_encode(payload, n, frame, sizeof frame);
        CHECK(flen > 0 && flen <= EW_FRAME_MAX_ENCODED(n));
        CHECK(frame[flen - 1] == 0 && memchr(frame, 0, flen - 1) == NULL);
        s.len = 0;
        ew_tx_init(&tx, sink_write, &s);
        ew_tx_begin(&tx);
        /* Put in uneven pieces. */
        for (i = 0; i < n;) {
            size_t k = 1 + tt_rand(&seed) % 97;
            if (k > n - i) k = n - i;
            ew_tx_put(&tx, payload + i, k);
            i += k;
        }
        ew_tx_end(&tx);
        CHECK(s.len == flen && memcmp(s.buf, frame, flen) == 0);
        ew_rx_init(&rx, rxbuf, sizeof rxbuf);
        CHECK(feed(&rx, frame, flen, got, &glen) == 1);
        CHECK(glen == n && memcmp(got, payload, n) == 0);
        CHECK(rx.stats.frames == 1 && rx.stats.crc_errors == 0 && rx.stats.malformed == 0);
    }
}

static void t_frame_final_full_block(void)
{
    /* payload || crc ends in exactly 254 non-zero bytes: no empty block before the 0x00. */
    uint8_t payload[250], frame[300], rxbuf[300], got[300];
    size_t i, flen, glen = 0;
    uint32_t seed = 7;
    ew_rx rx;
    int tries = 0;
    for (;;) {
        uint32_t crc;
        for (i = 0; i < 250; i++) payload[i] = (uint8_t)(1 + tt_rand(&seed) % 255);
        crc = ew_crc32c(0, payload, 250);
        tries++;
        if ((crc & 0xFFu) && (crc & 0xFF00u) && (crc & 0xFF0000u) && (crc & 0xFF000000u)) break;
    }
    flen = ew_frame_encode(payload, 250, frame, sizeof frame);
    CHECK(flen == 256 && frame[0] == 0xFF && frame[255] == 0);
    ew_rx_init(&rx, rxbuf, sizeof rxbuf);
    CHECK(feed(&rx, frame, flen, got, &glen) == 1 && glen == 250);
    CHECK(tries < 100);
}

static void t_rx_errors(void)
{
    uint8_t rxbuf[20 + 4], frame[64], got[64];
    uint8_t payload[30];
    size_t flen, glen = 0;
    ew_rx rx;
    memset(payload, 0x41, sizeof payload);
    ew_rx_init(&rx, rxbuf, sizeof rxbuf);

    /* Bad CRC: dropped and counted. */
    flen = ew_frame_encode(payload, 10, frame, sizeof frame);
    frame[3] ^= 0x04;
    CHECK(feed(&rx, frame, flen, got, &glen) == 0);
    CHECK(rx.stats.crc_errors == 1);

    /* Oversize (30 > 20): dropped, counted, the next frame is fine. */
    flen = ew_frame_encode(payload, 30, frame, sizeof frame);
    CHECK(feed(&rx, frame, flen, got, &glen) == 0);
    CHECK(rx.stats.oversize == 1);
    flen = ew_frame_encode(payload, 20, frame, sizeof frame);
    CHECK(feed(&rx, frame, flen, got, &glen) == 1 && glen == 20);

    /* Too short to hold a CRC, and a truncated COBS block: malformed. */
    {
        static const uint8_t shortf[] = {0x03, 0x11, 0x22, 0x00};
        static const uint8_t trunc[] = {0x09, 0x11, 0x22, 0x00};
        static const uint8_t idle[] = {0x00, 0x00, 0x00};
        CHECK(feed(&rx, shortf, sizeof shortf, NULL, NULL) == 0);
        CHECK(feed(&rx, trunc, sizeof trunc, NULL, NULL) == 0);
        CHECK(rx.stats.malformed == 2);
        /* Idle delimiters are not errors. */
        CHECK(feed(&rx, idle, sizeof idle, NULL, NULL) == 0);
        CHECK(rx.stats.malformed == 2 && rx.stats.crc_errors == 1);
    }

    /* Garbage without a delimiter, then a frame: the 0x00 in front resynchronises. */
    {
        uint8_t junk[200];
        size_t i;
        for (i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(1 + i % 250);
        CHECK(feed(&rx, junk, sizeof junk, NULL, NULL) == 0);
        flen = ew_frame_encode(payload, 5, frame + 1, sizeof frame - 1);
        frame[0] = 0;
        CHECK(feed(&rx, frame, flen + 1, got, &glen) == 1 && glen == 5);
    }
    CHECK(rx.stats.frames == 2);
}

static void t_rx_split_and_back_to_back(void)
{
    /* Three frames back to back, fed one byte at a time and in one go: same result. */
    uint8_t stream[256], rxbuf[64], got[64];
    uint8_t a[] = {1, 2, 3}, b[] = {0, 0, 0, 0}, c[] = {0xFF, 0x00, 0xFE};
    size_t n = 0, glen = 0;
    ew_rx rx;
    n += ew_frame_encode(a, sizeof a, stream + n, sizeof stream - n);
    n += ew_frame_encode(b, sizeof b, stream + n, sizeof stream - n);
    n += ew_frame_encode(c, sizeof c, stream + n, sizeof stream - n);
    ew_rx_init(&rx, rxbuf, sizeof rxbuf);
    CHECK(feed(&rx, stream, n, got, &glen) == 3);
    CHECK(glen == 3 && memcmp(got, c, 3) == 0);
}

void suite_link(void)
{
    RUN(t_crc_vectors);
    RUN(t_cobs_vectors);
    RUN(t_cobs_rejects);
    RUN(t_frame_roundtrip);
    RUN(t_frame_final_full_block);
    RUN(t_rx_errors);
    RUN(t_rx_split_and_back_to_back);
}
