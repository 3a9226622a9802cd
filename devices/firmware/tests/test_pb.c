/* Protobuf encode/decode of every LinkMessage body. */
#include <string.h>

#include "../src/ew_pb.h"
#include "tt.h"

static uint8_t enc[2048];

/* Encodes m, checks ew_pb_size agrees, decodes into *out. Returns the encoded length. */
static size_t roundtrip(const ew_msg *m, ew_msg *out)
{
    size_t len = 0;
    CHECK(ew_pb_encode_buf(m, enc, sizeof enc, &len));
    CHECK(ew_pb_size(m) == len);
    CHECK(ew_pb_decode(enc, len, out) == EW_PB_OK);
    CHECK(out->seq == m->seq && out->body == m->body);
    return len;
}

static int same(ew_bytes a, ew_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static void expect_hex(const ew_msg *m, const char *hex)
{
    uint8_t want[256];
    long n = tt_hex(hex, want, sizeof want);
    size_t len = 0;
    CHECK(ew_pb_encode_buf(m, enc, sizeof enc, &len));
    CHECK(n >= 0 && (size_t)n == len && memcmp(enc, want, len) == 0);
}

static void t_known_bytes(void)
{
    ew_msg m;
    memset(&m, 0, sizeof m);
    m.seq = 1;
    m.body = EW_BODY_HELLO_REQUEST;
    m.u.hello_request.protocol_version = 1;
    expect_hex(&m, "0801 1202 0801");

    memset(&m, 0, sizeof m);
    m.body = EW_BODY_PING; /* seq 0 and time 0 are defaults: only the empty body remains */
    expect_hex(&m, "4200");

    memset(&m, 0, sizeof m);
    m.seq = 5;
    m.body = EW_BODY_COMMAND;
    m.u.command.actuator_id = 1;
    m.u.command.value = -1; /* int32 -1: ten-byte varint */
    expect_hex(&m, "0805 2a0d 0801 10ffffffffffffffffff01");

    memset(&m, 0, sizeof m);
    m.seq = 300;
    m.body = EW_BODY_RESULT;
    m.u.result.score = 0.5f;
    expect_hex(&m, "08ac02 5a05 1d0000003f");

    memset(&m, 0, sizeof m);
    m.seq = 2;
    m.body = EW_BODY_NACK;
    m.u.nack.ack_seq = 2;
    m.u.nack.reason = EW_NACK_UNKNOWN_ACTUATOR;
    m.u.nack.detail = ew_str("x");
    expect_hex(&m, "0802 3a07 0802 1001 1a0178");

    memset(&m, 0, sizeof m);
    m.body = EW_BODY_NONE; /* nothing at all */
    expect_hex(&m, "");
}

static void t_roundtrip_all(void)
{
    ew_msg m, d;
    static const uint8_t uid[8] = {0xDE, 0xAD, 0xBE, 0xEF, 0, 1, 2, 3};
    static const uint8_t digest[8] = {9, 8, 7, 6, 5, 4, 3, 2};
    static const uint8_t samples[6] = {1, 0, 0xFF, 0xFF, 0x00, 0x80};
    ew_sensor_desc sens[2];
    ew_actuator_desc act[3];
    ew_sensor_desc s;
    ew_actuator_desc a;

    memset(&m, 0, sizeof m);
    m.seq = 7;
    m.body = EW_BODY_HELLO_REQUEST;
    m.u.hello_request.protocol_version = 1;
    roundtrip(&m, &d);
    CHECK(d.u.hello_request.protocol_version == 1);

    memset(sens, 0, sizeof sens);
    sens[0].id = 1;
    sens[0].name = ew_str("mic");
    sens[0].format = EW_SAMPLE_INT16_LE;
    sens[0].rate_hz = 16000;
    sens[0].channels = 1;
    sens[1].id = 2;
    sens[1].name = ew_str("imu");
    sens[1].format = EW_SAMPLE_INT16_LE;
    sens[1].rate_hz = 100;
    sens[1].channels = 6;
    memset(act, 0, sizeof act);
    act[0].id = 1;
    act[0].name = ew_str("led");
    act[0].kind = EW_ACTUATOR_LED;
    act[1].id = 2;
    act[1].name = ew_str("relay");
    act[1].kind = EW_ACTUATOR_RELAY;
    act[2].id = 0; /* all defaults: an empty descriptor is still written */
    memset(&m, 0, sizeof m);
    m.seq = 0;
    m.body = EW_BODY_HELLO;
    m.u.hello.firmware_name = ew_str("ew-test");
    m.u.hello.firmware_version = ew_str("1.2.3");
    m.u.hello.protocol_version = 1;
    m.u.hello.unique_id.p = uid;
    m.u.hello.unique_id.len = sizeof uid;
    m.u.hello.sensors = sens;
    m.u.hello.sensor_count = 2;
    m.u.hello.actuators = act;
    m.u.hello.actuator_count = 3;
    m.u.hello.max_rx_payload = 256;
    roundtrip(&m, &d);
    CHECK(ew_bytes_eq_str(d.u.hello.firmware_name, "ew-test"));
    CHECK(ew_bytes_eq_str(d.u.hello.firmware_version, "1.2.3"));
    CHECK(d.u.hello.protocol_version == 1 && d.u.hello.max_rx_payload == 256);
    CHECK(same(d.u.hello.unique_id, m.u.hello.unique_id));
    CHECK(d.u.hello.sensor_count == 2 && d.u.hello.actuator_count == 3);
    CHECK(ew_pb_hello_sensor(&d.u.hello, 1, &s) && s.id == 2 && ew_bytes_eq_str(s.name, "imu") &&
          s.rate_hz == 100 && s.channels == 6 && s.format == EW_SAMPLE_INT16_LE);
    CHECK(ew_pb_hello_sensor(&d.u.hello, 0, &s) && s.id == 1 && s.rate_hz == 16000);
    CHECK(!ew_pb_hello_sensor(&d.u.hello, 2, &s));
    CHECK(ew_pb_hello_actuator(&d.u.hello, 1, &a) && a.id == 2 && a.kind == EW_ACTUATOR_RELAY &&
          ew_bytes_eq_str(a.name, "relay"));
    CHECK(ew_pb_hello_actuator(&d.u.hello, 2, &a) && a.id == 0 && a.name.len == 0);
    CHECK(!ew_pb_hello_actuator(&d.u.hello, 3, &a));

    memset(&m, 0, sizeof m);
    m.seq = 0xFFFFFFFFu;
    m.body = EW_BODY_SENSOR_BATCH;
    m.u.sensor_batch.sensor_id = 1;
    m.u.sensor_batch.first_sample_us = 0xFFFFFFFFFFFFFFFFull;
    m.u.sensor_batch.sample_count = 3;
    m.u.sensor_batch.samples.p = samples;
    m.u.sensor_batch.samples.len = sizeof samples;
    roundtrip(&m, &d);
    CHECK(d.u.sensor_batch.sensor_id == 1 && d.u.sensor_batch.sample_count == 3);
    CHECK(d.u.sensor_batch.first_sample_us == 0xFFFFFFFFFFFFFFFFull);
    CHECK(same(d.u.sensor_batch.samples, m.u.sensor_batch.samples));

    memset(&m, 0, sizeof m);
    m.seq = 3;
    m.body = EW_BODY_COMMAND;
    m.u.command.actuator_id = 2;
    m.u.command.value = INT32_MIN;
    m.u.command.duration_ms = 1500;
    roundtrip(&m, &d);
    CHECK(d.u.command.actuator_id == 2 && d.u.command.value == INT32_MIN &&
          d.u.command.duration_ms == 1500);
    m.u.command.value = 10000;
    roundtrip(&m, &d);
    CHECK(d.u.command.value == 10000);

    memset(&m, 0, sizeof m);
    m.seq = 4;
    m.body = EW_BODY_ACK;
    m.u.ack.ack_seq = 4;
    roundtrip(&m, &d);
    CHECK(d.u.ack.ack_seq == 4);

    memset(&m, 0, sizeof m);
    m.seq = 9;
    m.body = EW_BODY_NACK;
    m.u.nack.ack_seq = 9;
    m.u.nack.reason = EW_NACK_BAD_VALUE;
    m.u.nack.detail = ew_str("bad value");
    roundtrip(&m, &d);
    CHECK(d.u.nack.ack_seq == 9 && d.u.nack.reason == EW_NACK_BAD_VALUE &&
          ew_bytes_eq_str(d.u.nack.detail, "bad value"));

    memset(&m, 0, sizeof m);
    m.seq = 11;
    m.body = EW_BODY_PING;
    m.u.ping.time_us = 1234567890123ull;
    roundtrip(&m, &d);
    CHECK(d.u.ping.time_us == 1234567890123ull);
    m.body = EW_BODY_PONG;
    roundtrip(&m, &d);
    CHECK(d.u.pong.time_us == 1234567890123ull);

    memset(&m, 0, sizeof m);
    m.seq = 12;
    m.body = EW_BODY_LOG;
    m.u.log.level = 2;
    m.u.log.text = ew_str("battery low");
    roundtrip(&m, &d);
    CHECK(d.u.log.level == 2 && ew_bytes_eq_str(d.u.log.text, "battery low"));

    memset(&m, 0, sizeof m);
    m.seq = 13;
    m.body = EW_BODY_RESULT;
    m.u.result.model_name = ew_str("vad");
    m.u.result.label = 1;
    m.u.result.score = 0.875f;
    m.u.result.record_digest.p = digest;
    m.u.result.record_digest.len = sizeof digest;
    roundtrip(&m, &d);
    CHECK(ew_bytes_eq_str(d.u.result.model_name, "vad") && d.u.result.label == 1 &&
          d.u.result.score == 0.875f && same(d.u.result.record_digest, m.u.result.record_digest));
}

static void t_streamed_samples(void)
{
    /* The streaming int16 encoder gives the same bytes as packing first, for any length. */
    int16_t v[600];
    uint8_t packed[1200];
    static uint8_t a[1400], b[1400];
    size_t n, i, alen = 0;
    uint32_t seed = 99;
    for (n = 0; n <= 600; n += 37) {
        ew_msg m;
        ew_out o;
        ew_buf buf;
        for (i = 0; i < n; i++) {
            /* Every fourth sample 0, so the COBS stage sees zeros inside the samples too. */
            v[i] = i % 4 == 0 ? 0 : (int16_t)((int32_t)(tt_rand(&seed) % 65536u) - 32768);
            packed[2 * i] = (uint8_t)((uint16_t)v[i] & 0xFF);
            packed[2 * i + 1] = (uint8_t)((uint16_t)v[i] >> 8);
        }
        memset(&m, 0, sizeof m);
        m.seq = 42;
        m.body = EW_BODY_SENSOR_BATCH;
        m.u.sensor_batch.sensor_id = 1;
        m.u.sensor_batch.first_sample_us = 32000u * n;
        m.u.sensor_batch.sample_count = (uint32_t)n;
        m.u.sensor_batch.samples.p = packed;
        m.u.sensor_batch.samples.len = 2 * n;
        CHECK(ew_pb_encode_buf(&m, a, sizeof a, &alen));
        ew_out_buf(&o, &buf, b, sizeof b);
        ew_pb_encode_sensor_batch_i16(&o, 42, 1, 32000u * n, (uint32_t)n, v, n);
        CHECK(!buf.overflow && buf.len == alen && memcmp(a, b, alen) == 0);
        CHECK(o.len == alen);
    }
    /* 512 mono samples (the audio window) stays within the 1088-byte device->host limit. */
    {
        ew_out c;
        ew_out_counter(&c);
        ew_pb_encode_sensor_batch_i16(&c, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFFFFFFFFFull, 512, v, 512);
        CHECK(c.len <= 1088);
    }
}

static void t_encode_overflow(void)
{
    ew_msg m;
    size_t len = 99;
    memset(&m, 0, sizeof m);
    m.seq = 1;
    m.body = EW_BODY_LOG;
    m.u.log.text = ew_str("this does not fit in eight bytes");
    CHECK(!ew_pb_encode_buf(&m, enc, 8, &len));
    CHECK(len == 0);
}

static ew_pb_status dec_hex(const char *hex, ew_msg *m)
{
    uint8_t b[128];
    long n = tt_hex(hex, b, sizeof b);
    CHECK(n >= 0);
    return ew_pb_decode(b, (size_t)n, m);
}

static void t_decode_rules(void)
{
    ew_msg m;
    /* Unknown fields of every wire type are skipped, at both levels. */
    CHECK(dec_hex("0803 7805 79 0102030405060708 7d 01020304 7a02aabb 807d01"
                  " 2a0c 0801 1001 7801 8501 00000000",
                  &m) == EW_PB_OK);
    CHECK(m.seq == 3 && m.body == EW_BODY_COMMAND && m.u.command.actuator_id == 1 &&
          m.u.command.value == 1);
    /* The last oneof member on the wire wins. */
    CHECK(dec_hex("0801 3202 0807 4202 0809", &m) == EW_PB_OK);
    CHECK(m.body == EW_BODY_PING && m.u.ping.time_us == 9);
    /* Wrong wire type on a known field. */
    CHECK(dec_hex("0d01000000", &m) == EW_PB_MALFORMED);
    CHECK(dec_hex("2a02 0a00", &m) == EW_PB_MALFORMED);
    CHECK(dec_hex("1001", &m) == EW_PB_MALFORMED); /* body member as a varint */
    /* Truncated: length past the end, varint cut, fixed cut. */
    CHECK(dec_hex("0807 2a05 0801", &m) == EW_PB_MALFORMED);
    CHECK(m.seq == 7); /* seq survives for the Nack */
    CHECK(dec_hex("08ff", &m) == EW_PB_MALFORMED);
    CHECK(dec_hex("f90f 0102", &m) == EW_PB_MALFORMED);
    /* Eleven-byte varint, group wire types, field number 0. */
    CHECK(dec_hex("08ffffffffffffffffffff01", &m) == EW_PB_MALFORMED);
    CHECK(dec_hex("0b 0c", &m) == EW_PB_MALFORMED);
    CHECK(dec_hex("0001", &m) == EW_PB_MALFORMED);
    /* Malformed inside a nested descriptor of a Hello. */
    CHECK(dec_hex("1a04 2a02 08ff", &m) == EW_PB_MALFORMED);
    /* Empty input is a valid, empty message. */
    CHECK(ew_pb_decode(enc, 0, &m) == EW_PB_OK && m.seq == 0 && m.body == EW_BODY_NONE);
    /* uint32 fields keep the low 32 bits of a larger varint, as protobuf says. */
    CHECK(dec_hex("08 8180808010", &m) == EW_PB_OK && m.seq == 1);
}

void suite_pb(void)
{
    RUN(t_known_bytes);
    RUN(t_roundtrip_all);
    RUN(t_streamed_samples);
    RUN(t_encode_overflow);
    RUN(t_decode_rules);
}
