/* ew_device: the device state machine of the serial link. See ew_device.h. */
#include "ew_device.h"

#include <string.h>

/* `timed` is a 32-bit mask. */
typedef char ew_max_actuators_fits[(EW_MAX_ACTUATORS <= 32u) ? 1 : -1];

static void bump(uint32_t *c)
{
    if (*c != UINT32_MAX) (*c)++;
}

static void port_write(void *ctx, const uint8_t *p, size_t n)
{
    ew_device *d = (ew_device *)ctx;
    d->port->write(d->port->ctx, p, n);
}

void ew_device_init(ew_device *d, const ew_device_info *info, const ew_port *port)
{
    memset(d, 0, sizeof *d);
    d->info = info;
    d->port = port;
    d->next_seq = 1;
    ew_rx_init(&d->rx, d->rx_buf, sizeof d->rx_buf);
    ew_tx_init(&d->tx, port_write, d);
}

static uint32_t take_seq(ew_device *d)
{
    uint32_t s = d->next_seq;
    d->next_seq = s == UINT32_MAX ? 1u : s + 1u;
    return s;
}

bool ew_device_send(ew_device *d, const ew_msg *m)
{
    ew_out o;
    if (ew_pb_size(m) > EW_MAX_TX_PAYLOAD) {
        bump(&d->stats.tx_refused);
        return false;
    }
    ew_tx_begin(&d->tx);
    ew_out_tx(&o, &d->tx);
    ew_pb_encode(&o, m);
    ew_tx_end(&d->tx);
    bump(&d->stats.tx_frames);
    return true;
}

static void send_hello(ew_device *d, uint32_t seq)
{
    ew_msg m;
    ew_hello *h = &m.u.hello;
    memset(&m, 0, sizeof m);
    m.seq = seq;
    m.body = EW_BODY_HELLO;
    h->firmware_name = ew_str(d->info->firmware_name);
    h->firmware_version = ew_str(d->info->firmware_version);
    h->protocol_version = EW_PROTOCOL_VERSION;
    h->unique_id.p = d->info->unique_id;
    h->unique_id.len = d->info->unique_id ? d->info->unique_id_len : 0;
    h->sensors = d->info->sensors;
    h->sensor_count = d->info->sensor_count;
    h->actuators = d->info->actuators;
    h->actuator_count = d->info->actuator_count;
    h->max_rx_payload = EW_MAX_RX_PAYLOAD;
    ew_device_send(d, &m);
}

void ew_device_start(ew_device *d)
{
    send_hello(d, 0);
}

static void send_ack(ew_device *d, uint32_t seq)
{
    ew_msg m;
    memset(&m, 0, sizeof m);
    m.seq = seq;
    m.body = EW_BODY_ACK;
    m.u.ack.ack_seq = seq;
    bump(&d->stats.acks);
    ew_device_send(d, &m);
}

static void send_nack(ew_device *d, uint32_t seq, uint32_t reason, const char *detail)
{
    ew_msg m;
    memset(&m, 0, sizeof m);
    m.seq = seq;
    m.body = EW_BODY_NACK;
    m.u.nack.ack_seq = seq;
    m.u.nack.reason = reason;
    m.u.nack.detail = ew_str(detail);
    bump(&d->stats.nacks);
    ew_device_send(d, &m);
}

/* LED and relay take 0/1, PWM a duty of 0..10000; other kinds are the application's business. */
static bool value_ok(const ew_actuator_desc *a, int32_t v)
{
    switch (a->kind) {
    case EW_ACTUATOR_LED:
    case EW_ACTUATOR_RELAY: return v == 0 || v == 1;
    case EW_ACTUATOR_PWM: return v >= 0 && v <= 10000;
    default: return true;
    }
}

static void on_command(ew_device *d, uint32_t seq, const ew_command *c)
{
    size_t i;
    uint32_t reason;
    const ew_actuator_desc *a = NULL;
    for (i = 0; i < d->info->actuator_count; i++) {
        if (d->info->actuators[i].id == c->actuator_id) {
            a = &d->info->actuators[i];
            break;
        }
    }
    if (!a) {
        /* "no actuator N": the id helps whoever reads the host's error. */
        char detail[24] = "no actuator ";
        char digits[10];
        size_t at = 12, k = 0;
        uint32_t v = c->actuator_id;
        do {
            digits[k++] = (char)('0' + v % 10u);
            v /= 10u;
        } while (v);
        while (k) detail[at++] = digits[--k];
        detail[at] = 0;
        send_nack(d, seq, EW_NACK_UNKNOWN_ACTUATOR, detail);
        return;
    }
    if (!value_ok(a, c->value)) {
        send_nack(d, seq, EW_NACK_BAD_VALUE, "bad value");
        return;
    }
    if (c->duration_ms > 0x7FFFFFFFu) {
        send_nack(d, seq, EW_NACK_BAD_VALUE, "duration too long");
        return;
    }
    reason = d->port->actuator_set(d->port->ctx, a, c->value);
    if (reason != 0) {
        send_nack(d, seq, reason, "actuator refused");
        return;
    }
    if (i < EW_MAX_ACTUATORS) {
        /* A new command replaces a running timed one. */
        d->timed &= ~(1u << i);
        if (c->duration_ms > 0 && c->value != 0) {
            d->off_at[i] = d->port->millis(d->port->ctx) + c->duration_ms;
            d->timed |= 1u << i;
        }
    }
    send_ack(d, seq);
}

static void on_message(ew_device *d, const ew_msg *m)
{
    switch (m->body) {
    case EW_BODY_HELLO_REQUEST:
        /* Answer whatever version the host speaks: the host decides whether it can talk to us. */
        send_hello(d, m->seq);
        break;
    case EW_BODY_COMMAND: on_command(d, m->seq, &m->u.command); break;
    case EW_BODY_PING: {
        ew_msg r;
        memset(&r, 0, sizeof r);
        r.seq = m->seq;
        r.body = EW_BODY_PONG;
        r.u.pong.time_us = m->u.ping.time_us;
        ew_device_send(d, &r);
        break;
    }
    case EW_BODY_RESULT:
        if (d->port->on_result) d->port->on_result(d->port->ctx, &m->u.result);
        send_ack(d, m->seq);
        break;
    case EW_BODY_ACK:
    case EW_BODY_NACK:
    case EW_BODY_PONG:
        /* Answers are never answered (no Nack ping-pong between two confused peers). */
        break;
    case EW_BODY_HELLO:
    case EW_BODY_SENSOR_BATCH:
    case EW_BODY_LOG:
    case EW_BODY_NONE:
        send_nack(d, m->seq, EW_NACK_UNSUPPORTED, "unsupported message");
        break;
    }
}

void ew_device_feed(ew_device *d, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        const uint8_t *payload;
        size_t len;
        ew_msg m;
        if (!ew_rx_byte(&d->rx, p[i], &payload, &len)) continue;
        if (ew_pb_decode(payload, len, &m) != EW_PB_OK) {
            bump(&d->stats.rx_malformed);
            send_nack(d, m.seq, EW_NACK_MALFORMED, "malformed message");
            continue;
        }
        on_message(d, &m);
    }
}

void ew_device_poll(ew_device *d)
{
    uint32_t now;
    size_t i;
    if (!d->timed) return;
    now = d->port->millis(d->port->ctx);
    for (i = 0; i < EW_MAX_ACTUATORS && i < d->info->actuator_count; i++) {
        /* Wrap-safe: the deadline has passed when now - off_at is "non-negative". */
        if ((d->timed & (1u << i)) && (uint32_t)(now - d->off_at[i]) < 0x80000000u) {
            d->timed &= ~(1u << i);
            (void)d->port->actuator_set(d->port->ctx, &d->info->actuators[i], 0);
        }
    }
}

uint32_t ew_device_send_samples_i16(ew_device *d, uint32_t sensor_id, uint64_t first_sample_us,
                                    uint32_t sample_count, const int16_t *values,
                                    size_t n_values)
{
    ew_out o;
    uint32_t seq;
    ew_out_counter(&o);
    ew_pb_encode_sensor_batch_i16(&o, d->next_seq, sensor_id, first_sample_us, sample_count,
                                  values, n_values);
    if (o.len > EW_MAX_TX_PAYLOAD) {
        bump(&d->stats.tx_refused);
        return 0;
    }
    seq = take_seq(d);
    ew_tx_begin(&d->tx);
    ew_out_tx(&o, &d->tx);
    ew_pb_encode_sensor_batch_i16(&o, seq, sensor_id, first_sample_us, sample_count, values,
                                  n_values);
    ew_tx_end(&d->tx);
    bump(&d->stats.tx_frames);
    return seq;
}

uint32_t ew_device_send_samples(ew_device *d, uint32_t sensor_id, uint64_t first_sample_us,
                                uint32_t sample_count, const uint8_t *samples, size_t len)
{
    ew_msg m;
    memset(&m, 0, sizeof m);
    m.seq = d->next_seq;
    m.body = EW_BODY_SENSOR_BATCH;
    m.u.sensor_batch.sensor_id = sensor_id;
    m.u.sensor_batch.first_sample_us = first_sample_us;
    m.u.sensor_batch.sample_count = sample_count;
    m.u.sensor_batch.samples.p = samples;
    m.u.sensor_batch.samples.len = len;
    if (!ew_device_send(d, &m)) return 0;
    return take_seq(d);
}

uint32_t ew_device_log(ew_device *d, uint32_t level, const char *text)
{
    ew_msg m;
    memset(&m, 0, sizeof m);
    m.seq = d->next_seq;
    m.body = EW_BODY_LOG;
    m.u.log.level = level;
    m.u.log.text = ew_str(text);
    /* Cut long text to what fits (a few bytes of framing headroom per varint). */
    if (m.u.log.text.len > EW_MAX_TX_PAYLOAD - 32u) m.u.log.text.len = EW_MAX_TX_PAYLOAD - 32u;
    if (!ew_device_send(d, &m)) return 0;
    return take_seq(d);
}
