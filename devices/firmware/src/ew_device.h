/*
 * ew_device: the device side of the edgewarden serial link.
 *
 * Answers HelloRequest with Hello, Command with Ack or Nack, Ping with Pong, Result with Ack;
 * sends SensorBatch and Log; announces itself with Hello (seq 0) at start. All I/O goes through
 * a porting interface of function pointers (ew_port), so the same code runs on an Arduino, on
 * any MCU SDK, and in the host build that serves a pseudo-terminal.
 *
 * No malloc, no globals: declare one `static ew_device dev;` and its RAM is sizeof(ew_device)
 * (documented in README.md). Not thread-safe: call it from one context (loop or one task).
 */
#ifndef EW_DEVICE_H
#define EW_DEVICE_H

#include "ew_link.h"
#include "ew_pb.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest LinkMessage the device accepts (advertised in Hello.max_rx_payload). */
#ifndef EW_MAX_RX_PAYLOAD
#define EW_MAX_RX_PAYLOAD 256u
#endif

/* Largest LinkMessage the device sends (fits a SensorBatch of 512 int16 samples). */
#define EW_MAX_TX_PAYLOAD 1088u

/* Actuators with a timed command (Command.duration_ms) tracked at once. */
#ifndef EW_MAX_ACTUATORS
#define EW_MAX_ACTUATORS 8u
#endif

/* What the board provides. `on_result` may be NULL. */
typedef struct ew_port {
    /* Writes bytes to the serial line. Called with whole COBS blocks (≤ 255 bytes) at a time. */
    void (*write)(void *ctx, const uint8_t *p, size_t n);
    /* A millisecond counter that may wrap. */
    uint32_t (*millis)(void *ctx);
    /* Drives an actuator. Returns 0 when done, or an EW_NACK_* reason (e.g. EW_NACK_BUSY). */
    uint32_t (*actuator_set)(void *ctx, const ew_actuator_desc *actuator, int32_t value);
    /* An inference result the host sent (Result), for display or action. */
    void (*on_result)(void *ctx, const ew_result *result);
    void *ctx;
} ew_port;

/* Who the firmware is. All pointers must outlive the device (use static const data). */
typedef struct ew_device_info {
    const char *firmware_name;
    const char *firmware_version;
    const uint8_t *unique_id;
    size_t unique_id_len;
    const ew_sensor_desc *sensors;
    size_t sensor_count;
    const ew_actuator_desc *actuators;
    size_t actuator_count;  /* at most EW_MAX_ACTUATORS get timed commands */
} ew_device_info;

typedef struct ew_device_stats {
    uint32_t tx_frames;
    uint32_t acks;
    uint32_t nacks;
    uint32_t rx_malformed;  /* good CRC but not a valid LinkMessage */
    uint32_t tx_refused;    /* messages over EW_MAX_TX_PAYLOAD, not sent */
} ew_device_stats;

typedef struct ew_device {
    const ew_device_info *info;
    const ew_port *port;
    ew_rx rx;
    ew_tx tx;
    uint32_t next_seq;                      /* own messages: 1.., wrapping to 1 */
    uint32_t off_at[EW_MAX_ACTUATORS];      /* when a timed command ends (millis) */
    uint32_t timed;                         /* bit i: off_at[i] is armed */
    ew_device_stats stats;
    uint8_t rx_buf[EW_MAX_RX_PAYLOAD + EW_CRC_LEN];
} ew_device;

void ew_device_init(ew_device *d, const ew_device_info *info, const ew_port *port);

/* Announces the device: Hello with seq 0, so a host learns that the firmware (re)started. */
void ew_device_start(ew_device *d);

/* Bytes received from the serial line, any amount, any split. */
void ew_device_feed(ew_device *d, const uint8_t *p, size_t n);

/* Call often (every loop): ends timed commands. */
void ew_device_poll(ew_device *d);

/*
 * One SensorBatch of int16 samples (n_values = sample_count * channels, interleaved), streamed
 * into the frame without a copy. Returns the seq used, or 0 when it would exceed
 * EW_MAX_TX_PAYLOAD (nothing sent).
 */
uint32_t ew_device_send_samples_i16(ew_device *d, uint32_t sensor_id, uint64_t first_sample_us,
                                    uint32_t sample_count, const int16_t *values,
                                    size_t n_values);

/* One SensorBatch of already packed samples. Returns the seq used, or 0 if too large. */
uint32_t ew_device_send_samples(ew_device *d, uint32_t sensor_id, uint64_t first_sample_us,
                                uint32_t sample_count, const uint8_t *samples, size_t len);

/* A Log line (level 0 debug .. 3 error); text longer than fits is cut. Returns the seq used. */
uint32_t ew_device_log(ew_device *d, uint32_t level, const char *text);

/* Sends any message as is (seq included). False when it exceeds EW_MAX_TX_PAYLOAD. */
bool ew_device_send(ew_device *d, const ew_msg *m);

#ifdef __cplusplus
}
#endif

#endif /* EW_DEVICE_H */
