/* The device state machine through a fake port. */
#include <string.h>

#include "../src/ew_device.h"
#include "tt.h"

typedef struct fake {
    uint8_t out[16384];
    size_t out_len;
    size_t read_at;
    uint32_t now;
    uint32_t refuse_with;   /* actuator_set returns this */
    int sets;
    uint32_t last_id;
    int32_t last_value;
    int results;
    char last_model[16];
    ew_rx rx;
    uint8_t rxbuf[1100];
    uint8_t slots[8][1100]; /* decoded payloads stay valid for a few messages */
    int slot;
} fake;

static void f_write(void *ctx, const uint8_t *p, size_t n)
{
    fake *f = (fake *)ctx;
    CHECK(n <= 255 || n == 1);
    if (n > sizeof f->out - f->out_len) n = sizeof f->out - f->out_len;
    memcpy(f->out + f->out_len, p, n);
    f->out_len += n;
}

static uint32_t f_millis(void *ctx)
{
    return ((fake *)ctx)->now;
}

static uint32_t f_set(void *ctx, const ew_actuator_desc *a, int32_t value)
{
    fake *f = (fake *)ctx;
    if (f->refuse_with) return f->refuse_with;
    f->sets++;
    f->last_id = a->id;
    f->last_value = value;
    return 0;
}

static void f_result(void *ctx, const ew_result *r)
{
    fake *f = (fake *)ctx;
    size_t n = r->model_name.len < sizeof f->last_model - 1 ? r->model_name.len : sizeof f->last_model - 1;
    f->results++;
    memcpy(f->last_model, r->model_name.p, n);
    f->last_model[n] = 0;
}

static const ew_sensor_desc SENSORS[] = {
    {1, {(const uint8_t *)"mic", 3}, EW_SAMPLE_INT16_LE, 16000, 1},
};
static const ew_actuator_desc ACTUATORS[] = {
    {1, {(const uint8_t *)"led", 3}, EW_ACTUATOR_LED},
    {2, {(const uint8_t *)"relay", 5}, EW_ACTUATOR_RELAY},
    {3, {(const uint8_t *)"fan", 3}, EW_ACTUATOR_PWM},
};
static const uint8_t UID[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const ew_device_info INFO = {"ew-test", "0.1.0", UID, 8, SENSORS, 1, ACTUATORS, 3};

static fake F;
static ew_port PORT;
static ew_device D;

static void setup(void)
{
    memset(&F, 0, sizeof F);
    ew_rx_init(&F.rx, F.rxbuf, sizeof F.rxbuf);
    PORT.write = f_write;
    PORT.millis = f_millis;
    PORT.actuator_set = f_set;
    PORT.on_result = f_result;
    PORT.ctx = &F;
    ew_device_init(&D, &INFO, &PORT);
}

/* The next message the device wrote, or false when there is none. */
static bool next_msg(ew_msg *m)
{
    while (F.read_at < F.out_len) {
        const uint8_t *p;
        size_t len;
        if (ew_rx_byte(&F.rx, F.out[F.read_at++], &p, &len)) {
            uint8_t *slot = F.slots[F.slot++ % 8];
            memcpy(slot, p, len);
            CHECK(ew_pb_decode(slot, len, m) == EW_PB_OK);
            return true;
        }
    }
    return false;
}

static void send(const ew_msg *m)
{
    uint8_t pl[512], fr[600];
    size_t len = 0, flen;
    CHECK(ew_pb_encode_buf(m, pl, sizeof pl, &len));
    flen = ew_frame_encode(pl, len, fr, sizeof fr);
    CHECK(flen > 0);
    ew_device_feed(&D, fr, flen);
}

static void send_command(uint32_t seq, uint32_t id, int32_t value, uint32_t duration)
{
    ew_msg m;
    memset(&m, 0, sizeof m);
    m.seq = seq;
    m.body = EW_BODY_COMMAND;
    m.u.command.actuator_id = id;
    m.u.command.value = value;
    m.u.command.duration_ms = duration;
    send(&m);
}

static void expect_nack(uint32_t seq, uint32_t reason)
{
    ew_msg r;
    CHECK(next_msg(&r));
    CHECK(r.body == EW_BODY_NACK && r.seq == seq && r.u.nack.ack_seq == seq &&
          r.u.nack.reason == reason && r.u.nack.detail.len > 0);
}

static void expect_ack(uint32_t seq)
{
    ew_msg r;
    CHECK(next_msg(&r));
    CHECK(r.body == EW_BODY_ACK && r.seq == seq && r.u.ack.ack_seq == seq);
}

static void t_boot_hello_and_request(void)
{
    ew_msg m, r;
    ew_sensor_desc s;
    ew_actuator_desc a;
    setup();
    ew_device_start(&D);
    CHECK(next_msg(&r));
    CHECK(r.body == EW_BODY_HELLO && r.seq == 0);
    CHECK(ew_bytes_eq_str(r.u.hello.firmware_name, "ew-test"));
    CHECK(ew_bytes_eq_str(r.u.hello.firmware_version, "0.1.0"));
    CHECK(r.u.hello.protocol_version == 1 && r.u.hello.max_rx_payload == EW_MAX_RX_PAYLOAD);
    CHECK(r.u.hello.unique_id.len == 8 && memcmp(r.u.hello.unique_id.p, UID, 8) == 0);
    CHECK(r.u.hello.sensor_count == 1 && r.u.hello.actuator_count == 3);
    CHECK(ew_pb_hello_sensor(&r.u.hello, 0, &s) && s.rate_hz == 16000 && ew_bytes_eq_str(s.name, "mic"));
    CHECK(ew_pb_hello_actuator(&r.u.hello, 2, &a) && a.kind == EW_ACTUATOR_PWM);
    CHECK(!next_msg(&r));

    memset(&m, 0, sizeof m);
    m.seq = 1;
    m.body = EW_BODY_HELLO_REQUEST;
    m.u.hello_request.protocol_version = 1;
    send(&m);
    CHECK(next_msg(&r) && r.body == EW_BODY_HELLO && r.seq == 1);
    /* Another version still gets a Hello: the host decides and refuses with a clear error. */
    m.seq = 2;
    m.u.hello_request.protocol_version = 2;
    send(&m);
    CHECK(next_msg(&r) && r.body == EW_BODY_HELLO && r.seq == 2 && r.u.hello.protocol_version == 1);
}

static void t_commands(void)
{
    setup();
    send_command(2, 1, 1, 0);
    expect_ack(2);
    CHECK(F.sets == 1 && F.last_id == 1 && F.last_value == 1);
    send_command(3, 99, 1, 0);
    expect_nack(3, EW_NACK_UNKNOWN_ACTUATOR);
    send_command(4, 1, 5, 0);
    expect_nack(4, EW_NACK_BAD_VALUE);
    send_command(5, 2, -1, 0);
    expect_nack(5, EW_NACK_BAD_VALUE);
    send_command(6, 3, 10001, 0);
    expect_nack(6, EW_NACK_BAD_VALUE);
    send_command(7, 3, 10000, 0);
    expect_ack(7);
    CHECK(F.sets == 2 && F.last_id == 3 && F.last_value == 10000);
    F.refuse_with = EW_NACK_BUSY;
    send_command(8, 2, 1, 0);
    expect_nack(8, EW_NACK_BUSY);
    CHECK(D.stats.acks == 2 && D.stats.nacks == 5);
}

static void t_timed_command(void)
{
    setup();
    F.now = 0xFFFFFFF0u; /* the deadline wraps past zero */
    send_command(1, 1, 1, 100);
    expect_ack(1);
    CHECK(F.last_value == 1);
    F.now += 99;
    ew_device_poll(&D);
    CHECK(F.sets == 1);
    F.now += 1;
    ew_device_poll(&D);
    CHECK(F.sets == 2 && F.last_id == 1 && F.last_value == 0);
    F.now += 1000;
    ew_device_poll(&D);
    CHECK(F.sets == 2);
    /* A new command cancels the running timer. */
    send_command(2, 1, 1, 50);
    expect_ack(2);
    send_command(3, 1, 1, 0);
    expect_ack(3);
    F.now += 60;
    ew_device_poll(&D);
    CHECK(F.sets == 4 && F.last_value == 1);
}

static void t_ping_result_and_others(void)
{
    ew_msg m, r;
    static const uint8_t dg[4] = {1, 2, 3, 4};
    setup();
    memset(&m, 0, sizeof m);
    m.seq = 10;
    m.body = EW_BODY_PING;
    m.u.ping.time_us = 987654321012ull;
    send(&m);
    CHECK(next_msg(&r) && r.body == EW_BODY_PONG && r.seq == 10 && r.u.pong.time_us == 987654321012ull);

    memset(&m, 0, sizeof m);
    m.seq = 11;
    m.body = EW_BODY_RESULT;
    m.u.result.model_name = ew_str("vad");
    m.u.result.label = 1;
    m.u.result.score = 0.9f;
    m.u.result.record_digest.p = dg;
    m.u.result.record_digest.len = 4;
    send(&m);
    expect_ack(11);
    CHECK(F.results == 1 && strcmp(F.last_model, "vad") == 0);

    /* Answers are not answered; device->host kinds are unsupported here. */
    memset(&m, 0, sizeof m);
    m.seq = 12;
    m.body = EW_BODY_ACK;
    m.u.ack.ack_seq = 5;
    send(&m);
    m.body = EW_BODY_PONG;
    send(&m);
    CHECK(!next_msg(&r));
    memset(&m, 0, sizeof m);
    m.seq = 13;
    m.body = EW_BODY_LOG;
    m.u.log.text = ew_str("hi");
    send(&m);
    expect_nack(13, EW_NACK_UNSUPPORTED);
    memset(&m, 0, sizeof m);
    m.seq = 14;
    send(&m); /* no body at all */
    expect_nack(14, EW_NACK_UNSUPPORTED);
}

static void t_bad_frames(void)
{
    uint8_t pl[400], fr[500];
    size_t flen;
    ew_msg r;
    setup();
    /* Good CRC, broken protobuf (seq 21, then a truncated body): Nack MALFORMED with the seq. */
    pl[0] = 0x08;
    pl[1] = 21;
    pl[2] = 0x2a;
    pl[3] = 0x09;
    pl[4] = 0x08;
    flen = ew_frame_encode(pl, 5, fr, sizeof fr);
    ew_device_feed(&D, fr, flen);
    expect_nack(21, EW_NACK_MALFORMED);
    CHECK(D.stats.rx_malformed == 1);
    /* Over max_rx_payload: dropped silently, counted; the link goes on. */
    memset(pl, 0x11, sizeof pl);
    flen = ew_frame_encode(pl, EW_MAX_RX_PAYLOAD + 1, fr, sizeof fr);
    ew_device_feed(&D, fr, flen);
    CHECK(!next_msg(&r));
    CHECK(D.rx.stats.oversize == 1);
    /* Exactly max_rx_payload is accepted (a Log with a long text is "unsupported" but read). */
    {
        ew_msg m;
        char text[EW_MAX_RX_PAYLOAD];
        size_t len = 0;
        memset(text, 'a', sizeof text);
        text[EW_MAX_RX_PAYLOAD - 8] = 0;
        memset(&m, 0, sizeof m);
        m.seq = 22;
        m.body = EW_BODY_LOG;
        m.u.log.text = ew_str(text);
        CHECK(ew_pb_encode_buf(&m, pl, sizeof pl, &len));
        while (len < EW_MAX_RX_PAYLOAD) { /* grow the text until the payload hits the limit */
            m.u.log.text.len++;
            CHECK(ew_pb_encode_buf(&m, pl, sizeof pl, &len));
        }
        CHECK(len == EW_MAX_RX_PAYLOAD);
        flen = ew_frame_encode(pl, len, fr, sizeof fr);
        ew_device_feed(&D, fr, flen);
        expect_nack(22, EW_NACK_UNSUPPORTED);
    }
    /* A bit flip: dropped by CRC, no answer. */
    send_command(23, 1, 1, 0);
    expect_ack(23);
    {
        ew_msg m;
        size_t len = 0;
        memset(&m, 0, sizeof m);
        m.seq = 24;
        m.body = EW_BODY_COMMAND;
        m.u.command.actuator_id = 1;
        CHECK(ew_pb_encode_buf(&m, pl, sizeof pl, &len));
        flen = ew_frame_encode(pl, len, fr, sizeof fr);
        fr[2] ^= 0x10;
        ew_device_feed(&D, fr, flen);
        CHECK(!next_msg(&r));
        CHECK(D.rx.stats.crc_errors + D.rx.stats.malformed == 1);
    }
}

static void t_streaming_out(void)
{
    int16_t win[600];
    ew_msg r;
    size_t i;
    uint32_t s1, s2;
    setup();
    for (i = 0; i < 600; i++) win[i] = (int16_t)(i * 97 - 20000);
    s1 = ew_device_send_samples_i16(&D, 1, 32000, 512, win, 512);
    CHECK(s1 == 1);
    CHECK(next_msg(&r) && r.body == EW_BODY_SENSOR_BATCH && r.seq == 1);
    CHECK(r.u.sensor_batch.sensor_id == 1 && r.u.sensor_batch.first_sample_us == 32000 &&
          r.u.sensor_batch.sample_count == 512 && r.u.sensor_batch.samples.len == 1024);
    for (i = 0; i < 512; i++) {
        const uint8_t *p = r.u.sensor_batch.samples.p + 2 * i;
        if ((int16_t)(uint16_t)(p[0] | (p[1] << 8)) != win[i]) break;
    }
    CHECK(i == 512);
    /* Too big for one frame: refused, nothing written, seq not used. */
    CHECK(ew_device_send_samples_i16(&D, 1, 0, 600, win, 600) == 0);
    CHECK(D.stats.tx_refused == 1 && !next_msg(&r));
    s2 = ew_device_log(&D, 1, "hello from the device");
    CHECK(s2 == 2);
    CHECK(next_msg(&r) && r.body == EW_BODY_LOG && r.seq == 2 && r.u.log.level == 1 &&
          ew_bytes_eq_str(r.u.log.text, "hello from the device"));
    {
        static const uint8_t raw[4] = {1, 2, 3, 4};
        CHECK(ew_device_send_samples(&D, 2, 5, 2, raw, 4) == 3);
        CHECK(next_msg(&r) && r.body == EW_BODY_SENSOR_BATCH && r.u.sensor_batch.sensor_id == 2);
    }
    /* Own seq wraps from 2^32 - 1 back to 1, never 0 (0 is the boot Hello). */
    D.next_seq = UINT32_MAX;
    CHECK(ew_device_log(&D, 0, "a") == UINT32_MAX);
    CHECK(ew_device_log(&D, 0, "b") == 1);
    /* A very long log is cut to fit, not refused. */
    {
        static char big[1500];
        memset(big, 'x', sizeof big - 1);
        CHECK(ew_device_log(&D, 3, big) != 0);
        CHECK(next_msg(&r) && next_msg(&r) && next_msg(&r));
        CHECK(r.body == EW_BODY_LOG && r.u.log.text.len > 1000 && r.u.log.text.len < 1088);
    }
}

void suite_device(void)
{
    RUN(t_boot_hello_and_request);
    RUN(t_commands);
    RUN(t_timed_command);
    RUN(t_ping_result_and_others);
    RUN(t_bad_frames);
    RUN(t_streaming_out);
}
