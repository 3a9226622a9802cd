/*
 * ew_pb: hand-written protobuf encoders and decoders for exactly the LinkMessage of
 * proto/edgewarden/v1/link.proto (proto3). See README.md for why this is not nanopb.
 *
 * Encoding follows proto3 rules as protobufjs applies them: fields in field-number order,
 * scalars equal to their default (0, empty) are left out, the oneof body is always written
 * (even when empty). So the bytes match the TypeScript side byte for byte (golden frames).
 *
 * Decoding never copies: strings and bytes are views (ew_bytes) into the payload buffer, valid
 * as long as that buffer is. Hostile input returns EW_PB_MALFORMED, never reads out of bounds.
 */
#ifndef EW_PB_H
#define EW_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ew_link.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A byte string: a protobuf `bytes` or `string` (UTF-8, not NUL-terminated). */
typedef struct ew_bytes {
    const uint8_t *p;
    size_t len;
} ew_bytes;

/* A view of a NUL-terminated C string (NULL gives an empty one). */
ew_bytes ew_str(const char *s);

/* LinkMessage.body: the value is the field number of the oneof member. */
typedef enum ew_body {
    EW_BODY_NONE = 0,
    EW_BODY_HELLO_REQUEST = 2,
    EW_BODY_HELLO = 3,
    EW_BODY_SENSOR_BATCH = 4,
    EW_BODY_COMMAND = 5,
    EW_BODY_ACK = 6,
    EW_BODY_NACK = 7,
    EW_BODY_PING = 8,
    EW_BODY_PONG = 9,
    EW_BODY_LOG = 10,
    EW_BODY_RESULT = 11
} ew_body;

/* enum SampleFormat */
#define EW_SAMPLE_FORMAT_UNSPECIFIED 0u
#define EW_SAMPLE_INT16_LE 1u
#define EW_SAMPLE_FLOAT32_LE 2u
#define EW_SAMPLE_UINT8 3u
#define EW_SAMPLE_INT32_LE 4u

/* enum ActuatorKind */
#define EW_ACTUATOR_KIND_UNSPECIFIED 0u
#define EW_ACTUATOR_LED 1u
#define EW_ACTUATOR_RELAY 2u
#define EW_ACTUATOR_PWM 3u

/* enum NackReason */
#define EW_NACK_UNSPECIFIED 0u
#define EW_NACK_UNKNOWN_ACTUATOR 1u
#define EW_NACK_BAD_VALUE 2u
#define EW_NACK_BUSY 3u
#define EW_NACK_UNSUPPORTED 4u
#define EW_NACK_MALFORMED 5u

/* The protocol version this library speaks (HelloRequest/Hello.protocol_version). */
#define EW_PROTOCOL_VERSION 1u

typedef struct ew_hello_request {
    uint32_t protocol_version;
} ew_hello_request;

typedef struct ew_sensor_desc {
    uint32_t id;
    ew_bytes name;
    uint32_t format;   /* EW_SAMPLE_* */
    uint32_t rate_hz;
    uint32_t channels;
} ew_sensor_desc;

typedef struct ew_actuator_desc {
    uint32_t id;
    ew_bytes name;
    uint32_t kind;     /* EW_ACTUATOR_* */
} ew_actuator_desc;

typedef struct ew_hello {
    ew_bytes firmware_name;
    ew_bytes firmware_version;
    uint32_t protocol_version;
    ew_bytes unique_id;
    /* Encoding reads these arrays. Decoding sets the counts and leaves the pointers NULL:
       read the entries with ew_pb_hello_sensor()/ew_pb_hello_actuator() (no storage needed). */
    const ew_sensor_desc *sensors;
    size_t sensor_count;
    const ew_actuator_desc *actuators;
    size_t actuator_count;
    uint32_t max_rx_payload;
    ew_bytes raw;      /* set by the decoder: the encoded Hello body */
} ew_hello;

typedef struct ew_sensor_batch {
    uint32_t sensor_id;
    uint64_t first_sample_us;
    uint32_t sample_count;   /* per channel */
    ew_bytes samples;        /* packed in the sensor's format, channels interleaved */
} ew_sensor_batch;

typedef struct ew_command {
    uint32_t actuator_id;
    int32_t value;
    uint32_t duration_ms;
} ew_command;

typedef struct ew_ack {
    uint32_t ack_seq;
} ew_ack;

typedef struct ew_nack {
    uint32_t ack_seq;
    uint32_t reason;   /* EW_NACK_* */
    ew_bytes detail;
} ew_nack;

typedef struct ew_ping {
    uint64_t time_us;
} ew_ping;

typedef ew_ping ew_pong;

typedef struct ew_log {
    uint32_t level;    /* 0 debug, 1 info, 2 warn, 3 error */
    ew_bytes text;
} ew_log;

typedef struct ew_result {
    ew_bytes model_name;
    uint32_t label;
    float score;
    ew_bytes record_digest;
} ew_result;

/* One LinkMessage. Set `body` and the matching union member. */
typedef struct ew_msg {
    uint32_t seq;
    ew_body body;
    union {
        ew_hello_request hello_request;
        ew_hello hello;
        ew_sensor_batch sensor_batch;
        ew_command command;
        ew_ack ack;
        ew_nack nack;
        ew_ping ping;
        ew_pong pong;
        ew_log log;
        ew_result result;
    } u;
} ew_msg;

/* ---- output sinks --------------------------------------------------------------------------- */

/* Where an encoder writes. With write == NULL it only counts (to size a length prefix). */
typedef struct ew_out {
    ew_write_fn write;
    void *ctx;
    size_t len;        /* bytes written so far */
} ew_out;

/* A fixed memory buffer; overflow is sticky and nothing is written past cap. */
typedef struct ew_buf {
    uint8_t *p;
    size_t cap;
    size_t len;
    bool overflow;
} ew_buf;

void ew_out_counter(ew_out *o);
void ew_out_buf(ew_out *o, ew_buf *b, uint8_t *mem, size_t cap);
/* Writes straight into a frame transmitter (between ew_tx_begin and ew_tx_end). */
void ew_out_tx(ew_out *o, ew_tx *tx);

/* ---- encoding ------------------------------------------------------------------------------- */

/* Writes the LinkMessage bytes of m to o. */
void ew_pb_encode(ew_out *o, const ew_msg *m);

/* Encoded size of m in bytes. */
size_t ew_pb_size(const ew_msg *m);

/* Encodes into mem[0..cap). Returns false (and *len = 0) when it does not fit. */
bool ew_pb_encode_buf(const ew_msg *m, uint8_t *mem, size_t cap, size_t *len);

/*
 * A LinkMessage{seq, SensorBatch} whose samples are int16 values written little-endian straight
 * from `values` (n_values = sample_count * channels): no second buffer on the device.
 */
void ew_pb_encode_sensor_batch_i16(ew_out *o, uint32_t seq, uint32_t sensor_id,
                                   uint64_t first_sample_us, uint32_t sample_count,
                                   const int16_t *values, size_t n_values);

/* ---- decoding ------------------------------------------------------------------------------- */

typedef enum ew_pb_status {
    EW_PB_OK = 0,
    EW_PB_MALFORMED = 1
} ew_pb_status;

/*
 * Decodes a LinkMessage. Unknown fields are skipped (forward compatibility); a wrong wire type
 * on a known field, a truncated field or a varint over 10 bytes is MALFORMED. On MALFORMED,
 * m->seq still holds the seq when it was read before the damage (0 otherwise).
 */
ew_pb_status ew_pb_decode(const uint8_t *p, size_t n, ew_msg *m);

/* The i-th sensor / actuator descriptor of a decoded Hello. False when i is out of range. */
bool ew_pb_hello_sensor(const ew_hello *h, size_t i, ew_sensor_desc *out);
bool ew_pb_hello_actuator(const ew_hello *h, size_t i, ew_actuator_desc *out);

/* True when b equals the NUL-terminated string s. */
bool ew_bytes_eq_str(ew_bytes b, const char *s);

#ifdef __cplusplus
}
#endif

#endif /* EW_PB_H */
