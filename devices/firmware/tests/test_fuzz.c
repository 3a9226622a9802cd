/* Garbage, bit errors and oversize frames: nothing crashes, nothing corrupt gets through.
   Built with AddressSanitizer and UBSan where the compiler has them (see the Makefile). */
#include <string.h>

#include "../src/ew_device.h"
#include "tt.h"

#define RX_MAX 256u

static void t_random_bytes(void)
{
    static uint8_t buf[RX_MAX + EW_CRC_LEN];
    ew_rx rx;
    uint32_t seed = 0xC0FFEEu;
    long i;
    long delivered = 0;
    int bound_ok = 1;
    ew_rx_init(&rx, buf, sizeof buf);
    for (i = 0; i < 2000000; i++) {
        const uint8_t *p;
        size_t len;
        uint32_t r = tt_rand(&seed);
        /* Mostly non-zero bytes, so long runs overflow the buffer and must be cut. */
        uint8_t b = (r & 0xF00u) == 0 ? 0 : (uint8_t)r;
        if (ew_rx_byte(&rx, b, &p, &len)) delivered++;
        if (rx.len > rx.cap) bound_ok = 0;
    }
    CHECK(bound_ok);
    CHECK(delivered == 0); /* a random CRC match is 2^-32 per frame: none with this seed */
    CHECK(rx.stats.crc_errors + rx.stats.malformed + rx.stats.oversize > 1000);
}

/* Payload i is a function of i, so nothing has to be kept. */
static size_t make_payload(uint32_t i, size_t maxlen, uint8_t *out)
{
    uint32_t s = i * 2654435761u + 1u;
    size_t n = tt_rand(&s) % (maxlen + 1), k;
    for (k = 0; k < n; k++) {
        uint32_t r = tt_rand(&s);
        out[k] = (r & 7u) == 0 ? 0 : (uint8_t)(r >> 8);
    }
    return n;
}

static void t_bit_error_channel(void)
{
    /* 100,000 units through a channel with a 1e-3 bit error rate: frames up to the maximum,
       plus garbage bursts and oversize frames. Every intact frame arrives, nothing else does. */
    static uint8_t rxbuf[RX_MAX + EW_CRC_LEN];
    static uint8_t payload[700], unit[800];
    ew_rx rx;
    uint32_t seed = 0x5EEDu;
    uint32_t i;
    long intact = 0, intact_delivered = 0, wrong = 0, flips = 0, garbage = 0, oversize = 0;
    int prev_delim_ok = 1, bound_ok = 1;
    ew_rx_init(&rx, rxbuf, sizeof rxbuf);
    for (i = 0; i < 100000u; i++) {
        uint32_t kind = tt_rand(&seed) % 100u;
        size_t n = 0, ulen, k;
        int flipped = 0, got = 0, match = 0;
        if (kind < 2) { /* garbage burst, then a delimiter */
            ulen = 1 + tt_rand(&seed) % 300u;
            for (k = 0; k + 1 < ulen; k++) unit[k] = (uint8_t)tt_rand(&seed);
            unit[ulen - 1] = 0;
            garbage++;
        } else if (kind < 3) { /* a well-formed frame over the limit */
            n = RX_MAX + 1 + tt_rand(&seed) % 400u;
            for (k = 0; k < n; k++) payload[k] = (uint8_t)tt_rand(&seed);
            ulen = ew_frame_encode(payload, n, unit, sizeof unit);
            oversize++;
        } else {
            n = make_payload(i, RX_MAX, payload);
            ulen = ew_frame_encode(payload, n, unit, sizeof unit);
        }
        for (k = 0; k < ulen * 8; k++) {
            if (tt_rand(&seed) % 1000u == 0) {
                unit[k / 8] ^= (uint8_t)(1u << (k % 8));
                flipped = 1;
                flips++;
            }
        }
        for (k = 0; k < ulen; k++) {
            const uint8_t *p;
            size_t len;
            if (ew_rx_byte(&rx, unit[k], &p, &len)) {
                got++;
                if (kind >= 3 && len == n && memcmp(p, payload, n) == 0) match = 1;
            }
            if (rx.len > rx.cap) bound_ok = 0;
        }
        if (kind >= 3 && prev_delim_ok && !flipped) {
            intact++;
            if (got == 1 && match) intact_delivered++;
            else wrong++;
        } else if (got != 0) {
            wrong++; /* something corrupt (or garbage) was delivered */
        }
        prev_delim_ok = unit[ulen - 1] == 0;
    }
    CHECK(bound_ok);
    CHECK(wrong == 0);
    CHECK(intact == intact_delivered);
    CHECK(intact > 30000); /* about 39%: enough intact frames that the test means something */
    CHECK(flips > 10000 && garbage > 1000 && oversize > 500);
    CHECK((long)rx.stats.frames == intact_delivered);
    CHECK(rx.stats.oversize >= (uint32_t)oversize / 2);
    printf("     bit-error channel: %ld intact of 100000, %ld bit flips, %u crc, %u oversize, %u malformed\n",
           intact, flips, rx.stats.crc_errors, rx.stats.oversize, rx.stats.malformed);
}

static void t_decode_fuzz(void)
{
    /* Random and mutated protobuf: decode returns OK or MALFORMED, views stay in bounds. */
    static const char *seeds[] = {
        "0801 1202 0801",
        "0800 1a3a 0a07 65772d74657374 1205 302e312e30 1801 2208 0102030405060708 2a0e 0801 1203 6d6963 1801 2080 7d 2801"
        " 3209 0801 1203 6c6564 1801 3880 02",
        "0805 2a0d 0801 10ffffffffffffffffff01",
        "0802 3a07 0802 1001 1a0178",
        "08ac02 5a0f 0a03 766164 1001 1d0000003f 2201aa",
        "0807 220e 0801 1080fa01 1802 2204 01020304",
        "080c 520d 0802 1209 62617474657279206c",
    };
    uint8_t base[128], buf[128];
    uint32_t seed = 77;
    long ok = 0, bad = 0;
    size_t s;
    int iter;
    for (s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        long n = tt_hex(seeds[s], base, sizeof base);
        ew_msg m;
        CHECK(n > 0);
        CHECK(ew_pb_decode(base, (size_t)n, &m) == EW_PB_OK);
        for (iter = 0; iter < 20000; iter++) {
            size_t len = (size_t)n, k;
            uint32_t r = tt_rand(&seed);
            memcpy(buf, base, (size_t)n);
            if (r % 3 == 0) len = tt_rand(&seed) % (size_t)(n + 1);          /* truncate */
            for (k = 0; k < 1 + r % 4; k++) buf[tt_rand(&seed) % (size_t)n] ^= (uint8_t)tt_rand(&seed);
            if (r % 11 == 0) for (k = 0; k < len; k++) buf[k] = (uint8_t)tt_rand(&seed);
            if (ew_pb_decode(buf, len, &m) == EW_PB_OK) {
                ok++;
                if (m.body == EW_BODY_HELLO) {
                    ew_sensor_desc sd;
                    ew_actuator_desc ad;
                    size_t j;
                    for (j = 0; j < m.u.hello.sensor_count; j++) CHECK(ew_pb_hello_sensor(&m.u.hello, j, &sd));
                    for (j = 0; j < m.u.hello.actuator_count; j++) CHECK(ew_pb_hello_actuator(&m.u.hello, j, &ad));
                } else {
                    /* What decodes re-encodes within the same number of bytes or fewer (defaults
                       and unknown fields dropped). */
                    size_t elen = ew_pb_size(&m);
                    CHECK(elen <= len + 10);
                }
            } else {
                bad++;
            }
        }
    }
    CHECK(ok > 1000 && bad > 1000);
}

/* A device fed with hostile frames keeps answering with well-formed frames. */
typedef struct capture {
    ew_rx rx;
    uint8_t buf[1100];
    long frames;
    long bad;
} capture;

static void cap_write(void *ctx, const uint8_t *p, size_t n)
{
    capture *c = (capture *)ctx;
    size_t i;
    for (i = 0; i < n; i++) {
        const uint8_t *pl;
        size_t len;
        ew_msg m;
        if (ew_rx_byte(&c->rx, p[i], &pl, &len)) {
            c->frames++;
            if (ew_pb_decode(pl, len, &m) != EW_PB_OK || len > EW_MAX_TX_PAYLOAD) c->bad++;
        }
    }
}

static uint32_t cap_millis(void *ctx)
{
    (void)ctx;
    return 0;
}

static uint32_t cap_set(void *ctx, const ew_actuator_desc *a, int32_t v)
{
    (void)ctx;
    (void)a;
    return v == 1 ? 0u : EW_NACK_BUSY;
}

static void t_device_survives(void)
{
    static const ew_actuator_desc act[] = {{1, {(const uint8_t *)"led", 3}, EW_ACTUATOR_LED}};
    static const ew_device_info info = {"fuzz", "0", NULL, 0, NULL, 0, act, 1};
    static capture cap;
    static ew_device dev;
    ew_port port;
    uint8_t pl[300], fr[400];
    uint32_t seed = 4242;
    long i;
    memset(&cap, 0, sizeof cap);
    ew_rx_init(&cap.rx, cap.buf, sizeof cap.buf);
    port.write = cap_write;
    port.millis = cap_millis;
    port.actuator_set = cap_set;
    port.on_result = NULL;
    port.ctx = &cap;
    ew_device_init(&dev, &info, &port);
    ew_device_start(&dev);
    for (i = 0; i < 60000; i++) {
        uint32_t r = tt_rand(&seed);
        size_t n = tt_rand(&seed) % (sizeof pl), k, flen;
        for (k = 0; k < n; k++) pl[k] = (uint8_t)tt_rand(&seed);
        if (r % 4 == 0 && n > 6) { /* a plausible LinkMessage: seq, then a body field */
            pl[0] = 0x08;
            pl[1] = (uint8_t)(r >> 8 & 0x7F);
            pl[2] = (uint8_t)(((2 + r % 10) << 3) | 2);
            pl[3] = (uint8_t)(n - 4 < 0x7F ? n - 4 : 0x7F);
        }
        if (r % 2 == 0) {
            flen = ew_frame_encode(pl, n, fr, sizeof fr);
            ew_device_feed(&dev, fr, flen);
        } else {
            ew_device_feed(&dev, pl, n); /* raw garbage */
        }
        ew_device_poll(&dev);
    }
    CHECK(cap.bad == 0);
    CHECK(cap.frames > 1000);
    CHECK(dev.rx.len <= dev.rx.cap);
    CHECK(dev.stats.rx_malformed > 0 && dev.stats.nacks > 0);
}

void suite_fuzz(void)
{
    RUN(t_random_bytes);
    RUN(t_bit_error_channel);
    RUN(t_decode_fuzz);
    RUN(t_device_survives);
}
