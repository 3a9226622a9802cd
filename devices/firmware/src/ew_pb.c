/* ew_pb: protobuf wire format for LinkMessage, by hand. See ew_pb.h. */
#include "ew_pb.h"

#include <string.h>

/* Protobuf wire types. */
#define WT_VARINT 0u
#define WT_I64 1u
#define WT_LEN 2u
#define WT_I32 5u

ew_bytes ew_str(const char *s)
{
    ew_bytes b;
    b.p = (const uint8_t *)s;
    b.len = s ? strlen(s) : 0;
    return b;
}

bool ew_bytes_eq_str(ew_bytes b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return b.len == n && (n == 0 || memcmp(b.p, s, n) == 0);
}

/* ---- sinks ---- */

static void buf_write(void *ctx, const uint8_t *p, size_t n)
{
    ew_buf *b = (ew_buf *)ctx;
    if (b->overflow || n > b->cap - b->len) {
        b->overflow = true;
        return;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void tx_write(void *ctx, const uint8_t *p, size_t n)
{
    ew_tx_put((ew_tx *)ctx, p, n);
}

void ew_out_counter(ew_out *o)
{
    o->write = NULL;
    o->ctx = NULL;
    o->len = 0;
}

void ew_out_buf(ew_out *o, ew_buf *b, uint8_t *mem, size_t cap)
{
    b->p = mem;
    b->cap = cap;
    b->len = 0;
    b->overflow = false;
    o->write = buf_write;
    o->ctx = b;
    o->len = 0;
}

void ew_out_tx(ew_out *o, ew_tx *tx)
{
    o->write = tx_write;
    o->ctx = tx;
    o->len = 0;
}

/* ---- encoding primitives ---- */

static void put(ew_out *o, const uint8_t *p, size_t n)
{
    if (n == 0) return;
    if (o->write) o->write(o->ctx, p, n);
    o->len += n;
}

static void put_varint(ew_out *o, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7Fu);
        v >>= 7;
        if (v) b[n] |= 0x80u;
        n++;
    } while (v);
    put(o, b, n);
}

static void put_tag(ew_out *o, uint32_t field, uint32_t wt)
{
    put_varint(o, ((uint64_t)field << 3) | wt);
}

static void f_u32(ew_out *o, uint32_t field, uint32_t v)
{
    if (v == 0) return;
    put_tag(o, field, WT_VARINT);
    put_varint(o, v);
}

static void f_u64(ew_out *o, uint32_t field, uint64_t v)
{
    if (v == 0) return;
    put_tag(o, field, WT_VARINT);
    put_varint(o, v);
}

static void f_i32(ew_out *o, uint32_t field, int32_t v)
{
    if (v == 0) return;
    put_tag(o, field, WT_VARINT);
    /* Negative int32 is sign-extended to 64 bits on the wire (10 bytes). */
    put_varint(o, (uint64_t)(int64_t)v);
}

static void f_bytes(ew_out *o, uint32_t field, ew_bytes b)
{
    if (b.len == 0) return;
    put_tag(o, field, WT_LEN);
    put_varint(o, b.len);
    put(o, b.p, b.len);
}

static void f_float(ew_out *o, uint32_t field, float f)
{
    uint32_t bits;
    uint8_t le[4];
    if (f == 0.0f) return;
    memcpy(&bits, &f, sizeof bits);
    le[0] = (uint8_t)bits;
    le[1] = (uint8_t)(bits >> 8);
    le[2] = (uint8_t)(bits >> 16);
    le[3] = (uint8_t)(bits >> 24);
    put_tag(o, field, WT_I32);
    put(o, le, 4);
}

typedef void (*enc_fn)(ew_out *o, const void *m);

/* A nested message: its length first (measured by a counting pass), then its fields. */
static void f_msg(ew_out *o, uint32_t field, enc_fn fn, const void *m)
{
    ew_out c;
    ew_out_counter(&c);
    fn(&c, m);
    put_tag(o, field, WT_LEN);
    put_varint(o, c.len);
    fn(o, m);
}

/* ---- message encoders ---- */

static void enc_hello_request(ew_out *o, const void *v)
{
    const ew_hello_request *m = (const ew_hello_request *)v;
    f_u32(o, 1, m->protocol_version);
}

static void enc_sensor_desc(ew_out *o, const void *v)
{
    const ew_sensor_desc *m = (const ew_sensor_desc *)v;
    f_u32(o, 1, m->id);
    f_bytes(o, 2, m->name);
    f_u32(o, 3, m->format);
    f_u32(o, 4, m->rate_hz);
    f_u32(o, 5, m->channels);
}

static void enc_actuator_desc(ew_out *o, const void *v)
{
    const ew_actuator_desc *m = (const ew_actuator_desc *)v;
    f_u32(o, 1, m->id);
    f_bytes(o, 2, m->name);
    f_u32(o, 3, m->kind);
}

static void enc_hello(ew_out *o, const void *v)
{
    const ew_hello *m = (const ew_hello *)v;
    size_t i;
    f_bytes(o, 1, m->firmware_name);
    f_bytes(o, 2, m->firmware_version);
    f_u32(o, 3, m->protocol_version);
    f_bytes(o, 4, m->unique_id);
    for (i = 0; m->sensors && i < m->sensor_count; i++) f_msg(o, 5, enc_sensor_desc, &m->sensors[i]);
    for (i = 0; m->actuators && i < m->actuator_count; i++)
        f_msg(o, 6, enc_actuator_desc, &m->actuators[i]);
    f_u32(o, 7, m->max_rx_payload);
}

static void enc_sensor_batch(ew_out *o, const void *v)
{
    const ew_sensor_batch *m = (const ew_sensor_batch *)v;
    f_u32(o, 1, m->sensor_id);
    f_u64(o, 2, m->first_sample_us);
    f_u32(o, 3, m->sample_count);
    f_bytes(o, 4, m->samples);
}

static void enc_command(ew_out *o, const void *v)
{
    const ew_command *m = (const ew_command *)v;
    f_u32(o, 1, m->actuator_id);
    f_i32(o, 2, m->value);
    f_u32(o, 3, m->duration_ms);
}

static void enc_ack(ew_out *o, const void *v)
{
    const ew_ack *m = (const ew_ack *)v;
    f_u32(o, 1, m->ack_seq);
}

static void enc_nack(ew_out *o, const void *v)
{
    const ew_nack *m = (const ew_nack *)v;
    f_u32(o, 1, m->ack_seq);
    f_u32(o, 2, m->reason);
    f_bytes(o, 3, m->detail);
}

static void enc_ping(ew_out *o, const void *v)
{
    const ew_ping *m = (const ew_ping *)v;
    f_u64(o, 1, m->time_us);
}

static void enc_log(ew_out *o, const void *v)
{
    const ew_log *m = (const ew_log *)v;
    f_u32(o, 1, m->level);
    f_bytes(o, 2, m->text);
}

static void enc_result(ew_out *o, const void *v)
{
    const ew_result *m = (const ew_result *)v;
    f_bytes(o, 1, m->model_name);
    f_u32(o, 2, m->label);
    f_float(o, 3, m->score);
    f_bytes(o, 4, m->record_digest);
}

void ew_pb_encode(ew_out *o, const ew_msg *m)
{
    f_u32(o, 1, m->seq);
    switch (m->body) {
    case EW_BODY_HELLO_REQUEST: f_msg(o, 2, enc_hello_request, &m->u.hello_request); break;
    case EW_BODY_HELLO: f_msg(o, 3, enc_hello, &m->u.hello); break;
    case EW_BODY_SENSOR_BATCH: f_msg(o, 4, enc_sensor_batch, &m->u.sensor_batch); break;
    case EW_BODY_COMMAND: f_msg(o, 5, enc_command, &m->u.command); break;
    case EW_BODY_ACK: f_msg(o, 6, enc_ack, &m->u.ack); break;
    case EW_BODY_NACK: f_msg(o, 7, enc_nack, &m->u.nack); break;
    case EW_BODY_PING: f_msg(o, 8, enc_ping, &m->u.ping); break;
    case EW_BODY_PONG: f_msg(o, 9, enc_ping, &m->u.pong); break;
    case EW_BODY_LOG: f_msg(o, 10, enc_log, &m->u.log); break;
    case EW_BODY_RESULT: f_msg(o, 11, enc_result, &m->u.result); break;
    case EW_BODY_NONE: break;
    }
}

size_t ew_pb_size(const ew_msg *m)
{
    ew_out c;
    ew_out_counter(&c);
    ew_pb_encode(&c, m);
    return c.len;
}

bool ew_pb_encode_buf(const ew_msg *m, uint8_t *mem, size_t cap, size_t *len)
{
    ew_out o;
    ew_buf b;
    ew_out_buf(&o, &b, mem, cap);
    ew_pb_encode(&o, m);
    *len = b.overflow ? 0 : b.len;
    return !b.overflow;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80u) {
        v >>= 7;
        n++;
    }
    return n;
}

void ew_pb_encode_sensor_batch_i16(ew_out *o, uint32_t seq, uint32_t sensor_id,
                                   uint64_t first_sample_us, uint32_t sample_count,
                                   const int16_t *values, size_t n_values)
{
    ew_sensor_batch hdr;
    ew_out c;
    size_t data = 2u * n_values;
    size_t body;
    size_t i = 0;
    hdr.sensor_id = sensor_id;
    hdr.first_sample_us = first_sample_us;
    hdr.sample_count = sample_count;
    hdr.samples.p = NULL;
    hdr.samples.len = 0;
    ew_out_counter(&c);
    enc_sensor_batch(&c, &hdr);
    body = c.len;
    if (data) body += 1u + varint_len(data) + data;

    f_u32(o, 1, seq);
    put_tag(o, EW_BODY_SENSOR_BATCH, WT_LEN);
    put_varint(o, body);
    enc_sensor_batch(o, &hdr);
    if (!data) return;
    put_tag(o, 4, WT_LEN);
    put_varint(o, data);
    /* Little-endian in small chunks: the samples go out without a copy of the window. */
    while (i < n_values) {
        uint8_t chunk[32];
        size_t k = 0;
        while (k < sizeof chunk && i < n_values) {
            uint16_t u = (uint16_t)values[i++];
            chunk[k++] = (uint8_t)u;
            chunk[k++] = (uint8_t)(u >> 8);
        }
        put(o, chunk, k);
    }
}

/* ---- decoding ---- */

typedef struct rd {
    const uint8_t *p;
    size_t n;
    size_t i;
} rd;

static void rd_init(rd *r, const uint8_t *p, size_t n)
{
    r->p = p;
    r->n = n;
    r->i = 0;
}

static bool rd_varint(rd *r, uint64_t *v)
{
    uint64_t x = 0;
    unsigned shift = 0;
    while (r->i < r->n) {
        uint8_t b = r->p[r->i++];
        if (shift == 63 && b > 1) return false; /* over 64 bits */
        x |= (uint64_t)(b & 0x7Fu) << shift;
        if (!(b & 0x80u)) {
            *v = x;
            return true;
        }
        shift += 7;
        if (shift > 63) return false;
    }
    return false;
}

/* One field: its number, wire type and value (varint/fixed in *v, length-delimited in *b). */
typedef struct field {
    uint32_t num;
    uint32_t wt;
    uint64_t v;
    ew_bytes b;
} field;

static bool rd_field(rd *r, field *f)
{
    uint64_t tag;
    size_t k;
    if (!rd_varint(r, &tag)) return false;
    if ((tag >> 3) == 0 || (tag >> 3) > 0x1FFFFFFFu) return false;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (uint32_t)(tag & 7u);
    f->v = 0;
    f->b.p = NULL;
    f->b.len = 0;
    switch (f->wt) {
    case WT_VARINT: return rd_varint(r, &f->v);
    case WT_I64:
        if (r->n - r->i < 8) return false;
        for (k = 0; k < 8; k++) f->v |= (uint64_t)r->p[r->i + k] << (8u * k);
        r->i += 8;
        return true;
    case WT_I32:
        if (r->n - r->i < 4) return false;
        for (k = 0; k < 4; k++) f->v |= (uint64_t)r->p[r->i + k] << (8u * k);
        r->i += 4;
        return true;
    case WT_LEN: {
        uint64_t len;
        if (!rd_varint(r, &len)) return false;
        if (len > r->n - r->i) return false;
        f->b.p = r->p + r->i;
        f->b.len = (size_t)len;
        r->i += (size_t)len;
        return true;
    }
    default: return false; /* groups (3, 4) and reserved wire types */
    }
}

/* Known fields must carry their declared wire type; anything else is skipped. */
#define WANT(f, t)                                                                                 \
    do {                                                                                           \
        if ((f).wt != (t)) return false;                                                           \
    } while (0)

static bool dec_hello_request(ew_bytes in, ew_hello_request *m)
{
    rd r;
    field f;
    rd_init(&r, in.p, in.len);
    while (r.i < r.n) {
        if (!rd_field(&r, &f)) return false;
        if (f.num == 1) {
            WANT(f, WT_VARINT);
            m->protocol_version = (uint32_t)f.v;
        }
    }
    return true;
}

static bool dec_sensor_desc(ew_bytes in, ew_sensor_desc *m)
{
    rd r;
    field f;
    memset(m, 0, sizeof *m);
    rd_init(&r, in.p, in.len);
    while (r.i < r.n) {
        if (!rd_field(&r, &f)) return false;
        switch (f.num) {
        case 1: WANT(f, WT_VARINT); m->id = (uint32_t)f.v; break;
        case 2: WANT(f, WT_LEN); m->name = f.b; break;
        case 3: WANT(f, WT_VARINT); m->format = (uint32_t)f.v; break;
        case 4: WANT(f, WT_VARINT); m->rate_hz = (uint32_t)f.v; break;
        case 5: WANT(f, WT_VARINT); m->channels = (uint32_t)f.v; break;
        default: break;
        }
    }
    return true;
}

static bool dec_actuator_desc(ew_bytes in, ew_actuator_desc *m)
{
    rd r;
    field f;
    memset(m, 0, sizeof *m);
    rd_init(&r, in.p, in.len);
    while (r.i < r.n) {
        if (!rd_field(&r, &f)) return false;
        switch (f.num) {
        case 1: WANT(f, WT_VARINT); m->id = (uint32_t)f.v; break;
        case 2: WANT(f, WT_LEN); m->name = f.b; break;
        case 3: WANT(f, WT_VARINT); m->kind = (uint32_t)f.v; break;
        default: break;
        }
    }
    return true;
}

static bool dec_hello(ew_bytes in, ew_hello *m)
{
    rd r;
    field f;
    m->raw = in;
    rd_init(&r, in.p, in.len);
    while (r.i < r.n) {
        if (!rd_field(&r, &f)) return false;
        switch (f.num) {
        case 1: WANT(f, WT_LEN); m->firmware_name = f.b; break;
        case 2: WANT(f, WT_LEN); m->firmware_version = f.b; break;
        case 3: WANT(f, WT_VARINT); m->protocol_version = (uint32_t)f.v; break;
        case 4: WANT(f, WT_LEN); m->unique_id = f.b; break;
        case 5: {
            ew_sensor_desc s;
            WANT(f, WT_LEN);
            if (!dec_sensor_desc(f.b, &s)) return false;
            m->sensor_count++;
            break;
        }
        case 6: {
            ew_actuator_desc a;
            WANT(f, WT_LEN);
            if (!dec_actuator_desc(f.b, &a)) return false;
            m->actuator_count++;
            break;
        }
        case 7: WANT(f, WT_VARINT); m->max_rx_payload = (uint32_t)f.v; break;
        default: break;
        }
    }
    return true;
}

/* Finds the i-th occurrence of field `num` in an already validated Hello. */
static bool hello_nth(const ew_hello *h, uint32_t num, size_t i, ew_bytes *out)
{
    rd r;
    field f;
    if (!h->raw.p) return false;
    rd_init(&r, h->raw.p, h->raw.len);
    while (r.i < r.n) {
        if (!rd_field(&r, &f)) return false;
        if (f.num == num && f.wt == WT_LEN) {
            if (i == 0) {
                *out = f.b;
                return true;
            }
            i--;
        }
    }
    return false;
}

bool ew_pb_hello_sensor(const ew_hello *h, size_t i, ew_sensor_desc *out)
{
    ew_bytes b;
    return hello_nth(h, 5, i, &b) && dec_sensor_desc(b, out);
}

bool ew_pb_hello_actuator(const ew_hello *h, size_t i, ew_actuator_desc *out)
{
    ew_bytes b;
    return hello_nth(h, 6, i, &b) && dec_actuator_desc(b, out);
}

static bool dec_sensor_batch(ew_bytes in, ew_sensor_batch *m)
{
    rd r;
    field f;
    rd_init(&r, in.p, in.len);
    while (r.i < r.n) {
        if (!rd_field(&r, &f)) return false;
        switch (f.num) {
        case 1: WANT(f, WT_VARINT); m->sensor_id = (uint32_t)f.v; break;
        case 2: WANT(f, WT_VARINT); m->first_sample_us = f.v; break;
        case 3: WANT(f, WT_VARINT); m->sample_count = (uint32_t)f.v; break;
        case 4: WANT(f, WT_LEN); m->samples = f.b; break;
        default: break;
        }
    }
    return true;
}

static bool dec_command(ew_bytes in, ew_command *m)
{
    rd r;
    field f;
    rd_init(&r, in.p, in.len);
    while (r.i < r.n) {
        if (!rd_field(&r, &f)) return false;
        switch (f.num) {
        case 1: WANT(f, WT_VARINT); m->actuator_id = (uint32_t)f.v; break;
        case 2:
            WANT(f, WT_VARINT);
            /* int32: the low 32 bits, two's complement (implementation-defined cast avoided). */
            {
                uint32_t u = (uint32_t)f.v;
                m->value = u <= (uint32_t)INT32_MAX ? (int32_t)u
                                                    : -(int32_t)(~u) - 1;
            }
            break;
        case 3: WANT(f, WT_VARINT); m->duration_ms = (uint32_t)f.v; break;
        default: break;
        }
    }
    return true;
}

static bool dec_ack(ew_bytes in, ew_ack *m)
{
    rd r;
    field f;
    rd_init(&r, in.p, in.len);
    while (r.i < r.n) {
        if (!rd_field(&r, &f)) return false;
        if (f.num == 1) {
            WANT(f, WT_VARINT);
            m->ack_seq = (uint32_t)f.v;
        }
    }
    return true;
}

static bool dec_nack(ew_bytes in, ew_nack *m)
{
    rd r;
    field f;
    rd_init(&r, in.p, in.len);
    while (r.i < r.n) {
        if (!rd_field(&r, &f)) return false;
        switch (f.num) {
        case 1: WANT(f, WT_VARINT); m->ack_seq = (uint32_t)f.v; break;
        case 2: WANT(f, WT_VARINT); m->reason = (uint32_t)f.v; break;
        case 3: WANT(f, WT_LEN); m->detail = f.b; break;
        default: break;
        }
    }
    return true;
}

static bool dec_ping(ew_bytes in, ew_ping *m)
{
    rd r;
    field f;
    rd_init(&r, in.p, in.len);
    while (r.i < r.n) {
        if (!rd_field(&r, &f)) return false;
        if (f.num == 1) {
            WANT(f, WT_VARINT);
            m->time_us = f.v;
        }
    }
    return true;
}

static bool dec_log(ew_bytes in, ew_log *m)
{
    rd r;
    field f;
    rd_init(&r, in.p, in.len);
    while (r.i < r.n) {
        if (!rd_field(&r, &f)) return false;
        switch (f.num) {
        case 1: WANT(f, WT_VARINT); m->level = (uint32_t)f.v; break;
        case 2: WANT(f, WT_LEN); m->text = f.b; break;
        default: break;
        }
    }
    return true;
}

static bool dec_result(ew_bytes in, ew_result *m)
{
    rd r;
    field f;
    rd_init(&r, in.p, in.len);
    while (r.i < r.n) {
        if (!rd_field(&r, &f)) return false;
        switch (f.num) {
        case 1: WANT(f, WT_LEN); m->model_name = f.b; break;
        case 2: WANT(f, WT_VARINT); m->label = (uint32_t)f.v; break;
        case 3: {
            uint32_t bits = (uint32_t)f.v;
            WANT(f, WT_I32);
            memcpy(&m->score, &bits, sizeof bits);
            break;
        }
        case 4: WANT(f, WT_LEN); m->record_digest = f.b; break;
        default: break;
        }
    }
    return true;
}

static bool dec_body(ew_msg *m, ew_bytes b)
{
    switch (m->body) {
    case EW_BODY_HELLO_REQUEST: return dec_hello_request(b, &m->u.hello_request);
    case EW_BODY_HELLO: return dec_hello(b, &m->u.hello);
    case EW_BODY_SENSOR_BATCH: return dec_sensor_batch(b, &m->u.sensor_batch);
    case EW_BODY_COMMAND: return dec_command(b, &m->u.command);
    case EW_BODY_ACK: return dec_ack(b, &m->u.ack);
    case EW_BODY_NACK: return dec_nack(b, &m->u.nack);
    case EW_BODY_PING: return dec_ping(b, &m->u.ping);
    case EW_BODY_PONG: return dec_ping(b, &m->u.pong);
    case EW_BODY_LOG: return dec_log(b, &m->u.log);
    case EW_BODY_RESULT: return dec_result(b, &m->u.result);
    case EW_BODY_NONE: return true;
    }
    return true;
}

ew_pb_status ew_pb_decode(const uint8_t *p, size_t n, ew_msg *m)
{
    rd r;
    field f;
    ew_bytes body = {NULL, 0};
    memset(m, 0, sizeof *m);
    rd_init(&r, p, n);
    while (r.i < r.n) {
        if (!rd_field(&r, &f)) return EW_PB_MALFORMED;
        if (f.num == 1) {
            if (f.wt != WT_VARINT) return EW_PB_MALFORMED;
            m->seq = (uint32_t)f.v;
        } else if (f.num >= 2 && f.num <= 11) {
            /* oneof: the last member on the wire wins. */
            if (f.wt != WT_LEN) return EW_PB_MALFORMED;
            m->body = (ew_body)f.num;
            body = f.b;
        }
    }
    if (!dec_body(m, body)) {
        uint32_t seq = m->seq;
        memset(m, 0, sizeof *m);
        m->seq = seq;
        return EW_PB_MALFORMED;
    }
    return EW_PB_OK;
}
