// Runs the Arduino sketch on the host against stub Arduino/PDM APIs: it must answer the link and
// stream 512-sample windows, exactly as on a board. Built twice (PDM and analogRead paths).
#include <math.h>
#include <stdio.h>

#include "../src/ew_device.h"
#include "arduino_stub/Arduino.h"
#include "arduino_stub/PDM.h"

void setup();
void loop();

static unsigned long long g_us = 0;
static int pins[64];
static uint8_t in_buf[256];
static size_t in_len = 0, in_pos = 0;
static uint8_t *out_buf;
static size_t out_len = 0, out_cap = 1u << 20;
static void (*pdm_cb)(void) = 0;
static int pdm_avail = 0;
static long pdm_sample = 0;

unsigned long millis(void) { return (unsigned long)(g_us / 1000u); }
unsigned long micros(void) { return (unsigned long)g_us; }
void pinMode(int, int) {}
void digitalWrite(int pin, int value) { pins[pin & 63] = value; }
int analogRead(int) { return 512 + (int)(300.0 * sin((double)g_us / 1000.0)); }

StubSerial Serial;
void StubSerial::begin(unsigned long) {}
int StubSerial::available() { return (int)(in_len - in_pos); }
int StubSerial::read() { return in_pos < in_len ? in_buf[in_pos++] : -1; }
size_t StubSerial::write(const uint8_t *p, size_t n)
{
    if (n > out_cap - out_len) n = out_cap - out_len;
    memcpy(out_buf + out_len, p, n);
    out_len += n;
    return n;
}

StubPDM PDM;
void StubPDM::onReceive(void (*fn)(void)) { pdm_cb = fn; }
void StubPDM::setBufferSize(int) {}
int StubPDM::begin(int, long) { return 1; }
int StubPDM::available() { return pdm_avail; }
static int16_t pdm_value(long i) { return (int16_t)(i * 7 % 20000 - 10000); }
int StubPDM::read(void *buf, size_t n)
{
    int16_t *s = (int16_t *)buf;
    for (size_t i = 0; i < n / 2; i++) s[i] = pdm_value(pdm_sample++);
    pdm_avail = 0;
    return (int)n;
}

static void queue(const ew_msg *m)
{
    uint8_t pl[64];
    size_t len = 0;
    ew_pb_encode_buf(m, pl, sizeof pl, &len);
    in_len += ew_frame_encode(pl, len, in_buf + in_len, sizeof in_buf - in_len);
}

int main()
{
    static uint8_t rxbuf[1200];
    out_buf = new uint8_t[out_cap];
    ew_msg m;
    setup();
    memset(&m, 0, sizeof m);
    m.seq = 1;
    m.body = EW_BODY_HELLO_REQUEST;
    m.u.hello_request.protocol_version = 1;
    queue(&m);
    memset(&m, 0, sizeof m);
    m.seq = 2;
    m.body = EW_BODY_COMMAND;
    m.u.command.actuator_id = 1;
    m.u.command.value = 1;
    queue(&m);
    m.seq = 3;
    m.u.command.actuator_id = 9;
    queue(&m);
    // 200 ms of simulated time, the loop running every 20 us; PDM delivers 256 samples per 16 ms.
    for (long t = 0; t < 10000; t++) {
        g_us += 20;
        if (pdm_cb && g_us % 16000 == 0) {
            pdm_avail = 512;
            pdm_cb();
        }
        loop();
    }
    ew_rx rx;
    ew_rx_init(&rx, rxbuf, sizeof rxbuf);
    int hello0 = 0, hello1 = 0, ack2 = 0, nack3 = 0, batches = 0, bad = 0, steps_ok = 1, samples_ok = 1;
    unsigned long long last_first = 0;
    for (size_t i = 0; i < out_len; i++) {
        const uint8_t *p;
        size_t n;
        if (!ew_rx_byte(&rx, out_buf[i], &p, &n)) continue;
        ew_msg r;
        if (ew_pb_decode(p, n, &r) != EW_PB_OK) {
            bad++;
            continue;
        }
        if (r.body == EW_BODY_HELLO && r.seq == 0 && batches == 0) hello0++;
        if (r.body == EW_BODY_HELLO && r.seq == 1) hello1++;
        if (r.body == EW_BODY_ACK && r.u.ack.ack_seq == 2) ack2++;
        if (r.body == EW_BODY_NACK && r.u.nack.ack_seq == 3 && r.u.nack.reason == EW_NACK_UNKNOWN_ACTUATOR) nack3++;
        if (r.body == EW_BODY_SENSOR_BATCH) {
            if (r.u.sensor_batch.sample_count != 512 || r.u.sensor_batch.samples.len != 1024) bad++;
            if (batches > 0 && r.u.sensor_batch.first_sample_us - last_first != 32000u) steps_ok = 0;
#ifdef EW_FORCE_PDM
            for (int k = 0; k < 512; k++) {
                const uint8_t *s = r.u.sensor_batch.samples.p + 2 * k;
                if ((int16_t)(uint16_t)(s[0] | (s[1] << 8)) != pdm_value(batches * 512L + k)) samples_ok = 0;
            }
#endif
            last_first = r.u.sensor_batch.first_sample_us;
            batches++;
        }
    }
    const int ok = hello0 == 1 && hello1 == 1 && ack2 == 1 && nack3 == 1 && bad == 0 && batches >= 5 &&
                   steps_ok && samples_ok && pins[LED_BUILTIN] == HIGH && rx.stats.crc_errors == 0;
    printf("sketch %s: hello %d/%d, ack %d, nack %d, batches %d, bad %d, steps %s, samples %s, led %s -> %s\n",
#ifdef EW_FORCE_PDM
           "pdm",
#else
           "analogRead",
#endif
           hello0, hello1, ack2, nack3, batches, bad, steps_ok ? "ok" : "WRONG", samples_ok ? "ok" : "WRONG",
           pins[LED_BUILTIN] == HIGH ? "on" : "off", ok ? "ok" : "FAIL");
    delete[] out_buf;
    return ok ? 0 : 1;
}
