/* The golden frames shared with the TypeScript side (sdk/link/fixtures/golden, values in its
   README.md): decode every file to the documented values, encode the values to the same bytes. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../src/ew_device.h"
#include "tt.h"

static const uint8_t UID[8] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03};
static const uint8_t DIGEST[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static ew_sensor_desc SENSORS[2];
static ew_actuator_desc ACTUATORS[2];
static int16_t AUDIO[512];
static uint8_t AUDIO_LE[1024];
static uint8_t IMU_LE[48];
static char LONG_TEXT[301];

static void init_values(void)
{
    int i, s, c;
    SENSORS[0].id = 1;
    SENSORS[0].name = ew_str("mic");
    SENSORS[0].format = EW_SAMPLE_INT16_LE;
    SENSORS[0].rate_hz = 16000;
    SENSORS[0].channels = 1;
    SENSORS[1].id = 2;
    SENSORS[1].name = ew_str("imu");
    SENSORS[1].format = EW_SAMPLE_INT16_LE;
    SENSORS[1].rate_hz = 100;
    SENSORS[1].channels = 6;
    ACTUATORS[0].id = 1;
    ACTUATORS[0].name = ew_str("led");
    ACTUATORS[0].kind = EW_ACTUATOR_LED;
    ACTUATORS[1].id = 2;
    ACTUATORS[1].name = ew_str("relay");
    ACTUATORS[1].kind = EW_ACTUATOR_RELAY;
    for (i = 0; i < 512; i++) {
        /* round(8000 sin(2 pi 440 i / 16000)); no value is near a .5 tie (README). */
        AUDIO[i] = (int16_t)lround(8000.0 * sin(2.0 * 3.14159265358979323846 * 440.0 * i / 16000.0));
        AUDIO_LE[2 * i] = (uint8_t)((uint16_t)AUDIO[i] & 0xFF);
        AUDIO_LE[2 * i + 1] = (uint8_t)((uint16_t)AUDIO[i] >> 8);
    }
    for (s = 0; s < 4; s++) {
        for (c = 0; c < 6; c++) {
            uint16_t v = (uint16_t)(int16_t)((s * 6 + c + 1) * 100 - 1200);
            IMU_LE[(s * 6 + c) * 2] = (uint8_t)(v & 0xFF);
            IMU_LE[(s * 6 + c) * 2 + 1] = (uint8_t)(v >> 8);
        }
    }
    memset(LONG_TEXT, 'A', 300);
    LONG_TEXT[300] = 0;
}

static void hello_values(ew_hello *h, int boot)
{
    h->firmware_name = ew_str("ew-fw");
    h->firmware_version = ew_str("1.0.0");
    h->protocol_version = 1;
    h->unique_id.p = UID;
    h->unique_id.len = sizeof UID;
    h->sensors = boot ? NULL : SENSORS;
    h->sensor_count = boot ? 0 : 2;
    h->actuators = ACTUATORS;
    h->actuator_count = boot ? 1 : 2;
    h->max_rx_payload = 256;
}

/* The documented values of golden message `name`; false for an unknown name. */
static bool expected(const char *name, ew_msg *m)
{
    memset(m, 0, sizeof *m);
    if (!strcmp(name, "hello_request")) {
        m->seq = 1;
        m->body = EW_BODY_HELLO_REQUEST;
        m->u.hello_request.protocol_version = 1;
    } else if (!strcmp(name, "hello") || !strcmp(name, "hello_boot")) {
        int boot = !strcmp(name, "hello_boot");
        m->seq = boot ? 0 : 1;
        m->body = EW_BODY_HELLO;
        hello_values(&m->u.hello, boot);
    } else if (!strcmp(name, "sensor_batch_imu")) {
        m->body = EW_BODY_SENSOR_BATCH;
        m->u.sensor_batch.sensor_id = 2;
        m->u.sensor_batch.first_sample_us = 1234567890123ull;
        m->u.sensor_batch.sample_count = 4;
        m->u.sensor_batch.samples.p = IMU_LE;
        m->u.sensor_batch.samples.len = sizeof IMU_LE;
    } else if (!strcmp(name, "sensor_batch_audio")) {
        m->body = EW_BODY_SENSOR_BATCH;
        m->u.sensor_batch.sensor_id = 1;
        m->u.sensor_batch.first_sample_us = 32000;
        m->u.sensor_batch.sample_count = 512;
        m->u.sensor_batch.samples.p = AUDIO_LE;
        m->u.sensor_batch.samples.len = sizeof AUDIO_LE;
    } else if (!strcmp(name, "command_led_on")) {
        m->seq = 7;
        m->body = EW_BODY_COMMAND;
        m->u.command.actuator_id = 1;
        m->u.command.value = 1;
    } else if (!strcmp(name, "command_pwm_negative")) {
        m->seq = 8;
        m->body = EW_BODY_COMMAND;
        m->u.command.actuator_id = 3;
        m->u.command.value = -1;
        m->u.command.duration_ms = 250;
    } else if (!strcmp(name, "ack")) {
        m->seq = 7;
        m->body = EW_BODY_ACK;
        m->u.ack.ack_seq = 7;
    } else if (!strcmp(name, "ack_max_seq")) {
        m->seq = 4294967295u;
        m->body = EW_BODY_ACK;
        m->u.ack.ack_seq = 4294967295u;
    } else if (!strcmp(name, "nack")) {
        m->seq = 9;
        m->body = EW_BODY_NACK;
        m->u.nack.ack_seq = 9;
        m->u.nack.reason = EW_NACK_UNKNOWN_ACTUATOR;
        m->u.nack.detail = ew_str("no actuator 9");
    } else if (!strcmp(name, "ping") || !strcmp(name, "pong")) {
        m->seq = 2;
        m->body = name[1] == 'i' ? EW_BODY_PING : EW_BODY_PONG;
        m->u.ping.time_us = 1000000;
    } else if (!strcmp(name, "log")) {
        m->body = EW_BODY_LOG;
        m->u.log.level = 2;
        m->u.log.text = ew_str("battery low");
    } else if (!strcmp(name, "log_long")) {
        m->body = EW_BODY_LOG;
        m->u.log.level = 1;
        m->u.log.text = ew_str(LONG_TEXT);
    } else if (!strcmp(name, "result")) {
        m->seq = 3;
        m->body = EW_BODY_RESULT;
        m->u.result.model_name = ew_str("vad");
        m->u.result.label = 1;
        m->u.result.score = 0.875f;
        m->u.result.record_digest.p = DIGEST;
        m->u.result.record_digest.len = sizeof DIGEST;
    } else {
        return false;
    }
    return true;
}

static bool eqb(ew_bytes a, ew_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Decoded message d has exactly the values of expected message e. */
static bool same_values(const ew_msg *d, const ew_msg *e)
{
    size_t i;
    if (d->seq != e->seq || d->body != e->body) return false;
    switch (e->body) {
    case EW_BODY_HELLO_REQUEST:
        return d->u.hello_request.protocol_version == e->u.hello_request.protocol_version;
    case EW_BODY_HELLO: {
        const ew_hello *a = &d->u.hello, *b = &e->u.hello;
        if (!eqb(a->firmware_name, b->firmware_name) || !eqb(a->firmware_version, b->firmware_version) ||
            a->protocol_version != b->protocol_version || !eqb(a->unique_id, b->unique_id) ||
            a->max_rx_payload != b->max_rx_payload || a->sensor_count != b->sensor_count ||
            a->actuator_count != b->actuator_count)
            return false;
        for (i = 0; i < b->sensor_count; i++) {
            ew_sensor_desc s;
            const ew_sensor_desc *x = &b->sensors[i];
            if (!ew_pb_hello_sensor(a, i, &s) || s.id != x->id || !eqb(s.name, x->name) ||
                s.format != x->format || s.rate_hz != x->rate_hz || s.channels != x->channels)
                return false;
        }
        for (i = 0; i < b->actuator_count; i++) {
            ew_actuator_desc s;
            const ew_actuator_desc *x = &b->actuators[i];
            if (!ew_pb_hello_actuator(a, i, &s) || s.id != x->id || !eqb(s.name, x->name) || s.kind != x->kind)
                return false;
        }
        return true;
    }
    case EW_BODY_SENSOR_BATCH:
        return d->u.sensor_batch.sensor_id == e->u.sensor_batch.sensor_id &&
               d->u.sensor_batch.first_sample_us == e->u.sensor_batch.first_sample_us &&
               d->u.sensor_batch.sample_count == e->u.sensor_batch.sample_count &&
               eqb(d->u.sensor_batch.samples, e->u.sensor_batch.samples);
    case EW_BODY_COMMAND:
        return d->u.command.actuator_id == e->u.command.actuator_id &&
               d->u.command.value == e->u.command.value &&
               d->u.command.duration_ms == e->u.command.duration_ms;
    case EW_BODY_ACK: return d->u.ack.ack_seq == e->u.ack.ack_seq;
    case EW_BODY_NACK:
        return d->u.nack.ack_seq == e->u.nack.ack_seq && d->u.nack.reason == e->u.nack.reason &&
               eqb(d->u.nack.detail, e->u.nack.detail);
    case EW_BODY_PING:
    case EW_BODY_PONG: return d->u.ping.time_us == e->u.ping.time_us;
    case EW_BODY_LOG:
        return d->u.log.level == e->u.log.level && eqb(d->u.log.text, e->u.log.text);
    case EW_BODY_RESULT:
        return eqb(d->u.result.model_name, e->u.result.model_name) &&
               d->u.result.label == e->u.result.label && d->u.result.score == e->u.result.score &&
               eqb(d->u.result.record_digest, e->u.result.record_digest);
    case EW_BODY_NONE: return true;
    }
    return false;
}

typedef struct capture {
    uint8_t buf[1200];
    size_t len;
} capture;

static void cap_write(void *ctx, const uint8_t *p, size_t n)
{
    capture *c = (capture *)ctx;
    if (n > sizeof c->buf - c->len) n = sizeof c->buf - c->len;
    memcpy(c->buf + c->len, p, n);
    c->len += n;
}

static const char *DIR_PATH;
static char text[8192];

/* Loads NAME.KIND.hex into out; returns its length or -1. */
static long load(const char *name, const char *kind, uint8_t *out, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.%s.hex", DIR_PATH, name, kind);
    if (tt_read_file(path, text, sizeof text) < 0) return -1;
    return tt_hex(text, out, cap);
}

static int golden_checked;

static void check_one(const char *name)
{
    static uint8_t payload[1200], frame[1300], mine[1300], rxbuf[1200];
    long pn = load(name, "payload", payload, sizeof payload);
    long fn = load(name, "frame", frame, sizeof frame);
    ew_msg e, d;
    size_t len = 0, got_len = 0, k;
    ew_rx rx;
    ew_tx tx;
    ew_out o;
    capture cap;
    const uint8_t *got = NULL;
    int frames = 0;
    bool known = expected(name, &e);
    if (!known) fprintf(stderr, "golden %s: no C expectation for this message (add it to test_golden.c)\n", name);
    CHECK(known);
    CHECK(pn >= 0 && fn > 0);
    if (!known || pn < 0 || fn <= 0) return;
    golden_checked++;
    /* (b) the documented values encode to exactly the golden payload and frame. */
    CHECK(ew_pb_encode_buf(&e, mine, sizeof mine, &len));
    CHECK(len == (size_t)pn && memcmp(mine, payload, len) == 0);
    len = ew_frame_encode(payload, (size_t)pn, mine, sizeof mine);
    CHECK(len == (size_t)fn && memcmp(mine, frame, len) == 0);
    cap.len = 0;
    ew_tx_init(&tx, cap_write, &cap);
    ew_tx_begin(&tx);
    ew_out_tx(&o, &tx);
    ew_pb_encode(&o, &e);
    ew_tx_end(&tx);
    CHECK(cap.len == (size_t)fn && memcmp(cap.buf, frame, cap.len) == 0);
    /* (a) the golden frame decodes to the documented values. */
    ew_rx_init(&rx, rxbuf, sizeof rxbuf);
    for (k = 0; k < (size_t)fn; k++) {
        const uint8_t *p;
        size_t n;
        if (ew_rx_byte(&rx, frame[k], &p, &n)) {
            frames++;
            got = p;
            got_len = n;
        }
    }
    CHECK(frames == 1 && got_len == (size_t)pn && memcmp(got, payload, got_len) == 0);
    CHECK(ew_pb_decode(payload, (size_t)pn, &d) == EW_PB_OK);
    CHECK(same_values(&d, &e));
    if (!same_values(&d, &e)) fprintf(stderr, "golden %s: decoded values differ\n", name);
}

static void t_golden_files(void)
{
    DIR *dir = opendir(DIR_PATH);
    struct dirent *ent;
    int files = 0;
    CHECK(dir != NULL);
    if (!dir) {
        fprintf(stderr, "golden: cannot open %s\n", DIR_PATH);
        return;
    }
    init_values();
    while ((ent = readdir(dir)) != NULL) {
        const char *suffix = ".frame.hex";
        size_t n = strlen(ent->d_name), sl = strlen(suffix);
        char name[256];
        if (strstr(ent->d_name, ".hex")) files++;
        if (n <= sl || n - sl >= sizeof name || strcmp(ent->d_name + n - sl, suffix) != 0) continue;
        memcpy(name, ent->d_name, n - sl);
        name[n - sl] = 0;
        check_one(name);
    }
    closedir(dir);
    CHECK(golden_checked >= 15);
    CHECK(files == 2 * golden_checked); /* every frame has its payload, nothing stray */
    printf("     golden: %d messages checked in %s\n", golden_checked, DIR_PATH);
}

/* The device code paths themselves produce golden bytes. */
static uint8_t dev_out[4096];
static size_t dev_len;
static void dev_write(void *ctx, const uint8_t *p, size_t n)
{
    (void)ctx;
    if (n > sizeof dev_out - dev_len) n = sizeof dev_out - dev_len;
    memcpy(dev_out + dev_len, p, n);
    dev_len += n;
}
static uint32_t dev_millis(void *ctx)
{
    (void)ctx;
    return 0;
}
static uint32_t dev_set(void *ctx, const ew_actuator_desc *a, int32_t v)
{
    (void)ctx;
    (void)a;
    (void)v;
    return 0;
}

static bool matches(const char *name)
{
    static uint8_t frame[1300];
    long fn = load(name, "frame", frame, sizeof frame);
    bool ok = fn > 0 && (size_t)fn == dev_len && memcmp(frame, dev_out, dev_len) == 0;
    if (!ok) fprintf(stderr, "golden %s: device output differs\n", name);
    dev_len = 0;
    return ok;
}

static void feed_golden(ew_device *d, const char *name)
{
    static uint8_t frame[1300];
    long fn = load(name, "frame", frame, sizeof frame);
    CHECK(fn > 0);
    if (fn > 0) ew_device_feed(d, frame, (size_t)fn);
}

static void t_device_speaks_golden(void)
{
    static ew_device dev;
    static ew_device_info boot_info, full_info;
    static ew_port port;
    ew_tx tx;
    ew_out o;
    init_values();
    port.write = dev_write;
    port.millis = dev_millis;
    port.actuator_set = dev_set;
    port.ctx = NULL;
    boot_info.firmware_name = "ew-fw";
    boot_info.firmware_version = "1.0.0";
    boot_info.unique_id = UID;
    boot_info.unique_id_len = sizeof UID;
    boot_info.actuators = ACTUATORS;
    boot_info.actuator_count = 1;
    full_info = boot_info;
    full_info.sensors = SENSORS;
    full_info.sensor_count = 2;
    full_info.actuator_count = 2;

    dev_len = 0;
    ew_device_init(&dev, &boot_info, &port);
    ew_device_start(&dev);
    CHECK(matches("hello_boot"));

    ew_device_init(&dev, &full_info, &port);
    feed_golden(&dev, "hello_request");
    CHECK(matches("hello"));
    feed_golden(&dev, "command_led_on");
    CHECK(matches("ack"));
    feed_golden(&dev, "ping");
    CHECK(matches("pong"));
    {
        /* Command(actuator 9) with seq 9 -> the golden Nack "no actuator 9". */
        ew_msg m;
        uint8_t pl[32], fr[48];
        size_t len = 0, flen;
        memset(&m, 0, sizeof m);
        m.seq = 9;
        m.body = EW_BODY_COMMAND;
        m.u.command.actuator_id = 9;
        m.u.command.value = 1;
        CHECK(ew_pb_encode_buf(&m, pl, sizeof pl, &len));
        flen = ew_frame_encode(pl, len, fr, sizeof fr);
        ew_device_feed(&dev, fr, flen);
        CHECK(matches("nack"));
    }
    /* The audio window streamed from int16 values, through the transmitter, is the golden frame. */
    ew_tx_init(&tx, dev_write, NULL);
    ew_tx_begin(&tx);
    ew_out_tx(&o, &tx);
    ew_pb_encode_sensor_batch_i16(&o, 0, 1, 32000, 512, AUDIO, 512);
    ew_tx_end(&tx);
    CHECK(matches("sensor_batch_audio"));
}

void suite_golden(const char *dir)
{
    DIR_PATH = dir ? dir : "../../sdk/link/fixtures/golden";
    RUN(t_golden_files);
    RUN(t_device_speaks_golden);
}
