// ew_vad_node: an edgewarden serial-link node for Arduino.
//
// Streams the microphone at 16 kHz in 512-sample windows (SensorBatch, int16 LE) to the host,
// which runs voice activity detection with signed provenance; drives the LED (actuator 1) and a
// relay pin (actuator 2) on Command, and answers HelloRequest, Ping and Result.
//
// Microphone: the on-board PDM microphone of the Arduino Nano 33 BLE Sense (PDM library);
// elsewhere analogRead() on A0 paced by micros() (best effort: a board whose analogRead is
// slower than 62.5 us delivers fewer samples per second than it announces; use a PDM/I2S mic).
//
// Build: run `make -C devices/firmware arduino` once, which copies the library (src/ew_*.{c,h})
// into this sketch's src/ folder, then compile this folder with the Arduino IDE or
//   arduino-cli compile --fqbn arduino:mbed_nano:nano33ble devices/firmware/arduino/ew_vad_node
// RAM: one ew_device (about 640 bytes on a 32-bit MCU) plus two 1 KB sample windows.

#include <Arduino.h>
#include <string.h>

#if defined(ARDUINO_ARDUINO_NANO33BLE) || defined(EW_FORCE_PDM)
#define EW_USE_PDM 1
#include <PDM.h>
#else
#define EW_USE_PDM 0
#endif

#include "src/ew_device.h"

#ifndef EW_BAUD
#define EW_BAUD 921600 // ignored by native USB serial; used by a UART bridge
#endif
#ifndef EW_RELAY_PIN
#define EW_RELAY_PIN 7
#endif
#ifndef EW_MIC_PIN
#define EW_MIC_PIN A0
#endif

static const uint32_t MIC_ID = 1;
static const uint32_t LED_ID = 1;
static const uint32_t RELAY_ID = 2;
static const size_t WINDOW = 512;       // samples per SensorBatch
static const uint32_t RATE_HZ = 16000;

static const ew_sensor_desc SENSORS[] = {
    {MIC_ID, {(const uint8_t *)"mic", 3}, EW_SAMPLE_INT16_LE, RATE_HZ, 1},
};
static const ew_actuator_desc ACTUATORS[] = {
    {LED_ID, {(const uint8_t *)"led", 3}, EW_ACTUATOR_LED},
    {RELAY_ID, {(const uint8_t *)"relay", 5}, EW_ACTUATOR_RELAY},
};
static uint8_t unique_id[8];
static const ew_device_info INFO = {
    "ew-vad-node", "0.1.0", unique_id, sizeof unique_id, SENSORS, 1, ACTUATORS, 2,
};

static ew_device dev;
static ew_port port;

// Two windows: the microphone fills one while loop() sends the other.
static int16_t windows[2][WINDOW];
static volatile size_t fill_pos = 0;
static volatile uint8_t filling = 0;
static volatile int8_t ready = -1;          // index of a full window waiting to be sent
static volatile uint32_t overruns = 0;      // windows lost because loop() was too slow
static uint64_t window_index = 0;           // windows recorded since start (timestamps)

// Called with new samples (from the PDM interrupt or the analog sampler).
static void take_samples(const int16_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        windows[filling][fill_pos++] = s[i];
        if (fill_pos == WINDOW) {
            fill_pos = 0;
            if (ready >= 0) {
                overruns++; // the previous full window is still queued: overwrite this one
            } else {
                ready = (int8_t)filling;
                filling ^= 1;
            }
        }
    }
}

#if EW_USE_PDM
static void on_pdm()
{
    int16_t buf[256];
    int bytes = PDM.available();
    if (bytes > (int)sizeof buf) bytes = sizeof buf;
    PDM.read(buf, bytes);
    take_samples(buf, (size_t)bytes / 2);
}
#else
static uint32_t next_sample_us = 0;
static void poll_analog()
{
    // 62.5 us per sample: alternate 62 and 63 us so 16 samples take exactly 1000 us.
    static uint8_t k = 0;
    uint32_t now = micros();
    if ((int32_t)(now - next_sample_us) < 0) return;
    next_sample_us += (k++ & 1) ? 63 : 62;
    if ((int32_t)(now - next_sample_us) > 1000) next_sample_us = now; // fell behind: resync
    int16_t v = (int16_t)((analogRead(EW_MIC_PIN) - 512) * 64); // 10-bit ADC, centred and scaled
    take_samples(&v, 1);
}
#endif

// ---- porting interface ----

static void port_write(void *ctx, const uint8_t *p, size_t n)
{
    (void)ctx;
    Serial.write(p, n);
}

static uint32_t port_millis(void *ctx)
{
    (void)ctx;
    return millis();
}

static uint32_t port_actuator_set(void *ctx, const ew_actuator_desc *a, int32_t value)
{
    (void)ctx;
    if (a->id == LED_ID) {
        digitalWrite(LED_BUILTIN, value ? HIGH : LOW);
    } else if (a->id == RELAY_ID) {
        digitalWrite(EW_RELAY_PIN, value ? HIGH : LOW);
    } else {
        return EW_NACK_UNKNOWN_ACTUATOR;
    }
    return 0;
}

static void read_unique_id()
{
#if defined(NRF_FICR)
    uint32_t a = NRF_FICR->DEVICEID[0], b = NRF_FICR->DEVICEID[1];
    for (int i = 0; i < 4; i++) {
        unique_id[i] = (uint8_t)(a >> (8 * i));
        unique_id[4 + i] = (uint8_t)(b >> (8 * i));
    }
#else
    // No factory id known for this board: a fixed one (set your own for several boards).
    static const uint8_t fixed[8] = {'e', 'w', 'n', 'o', 'd', 'e', 0, 1};
    memcpy(unique_id, fixed, sizeof unique_id);
#endif
}

void setup()
{
    pinMode(LED_BUILTIN, OUTPUT);
    pinMode(EW_RELAY_PIN, OUTPUT);
    digitalWrite(LED_BUILTIN, LOW);
    digitalWrite(EW_RELAY_PIN, LOW);
    Serial.begin(EW_BAUD);
    read_unique_id();

    port.write = port_write;
    port.millis = port_millis;
    port.actuator_set = port_actuator_set;
    port.on_result = NULL;
    port.ctx = NULL;
    ew_device_init(&dev, &INFO, &port);
    ew_device_start(&dev); // Hello with seq 0: the host learns that we (re)started

#if EW_USE_PDM
    PDM.onReceive(on_pdm);
    PDM.setBufferSize(512);
    if (!PDM.begin(1, RATE_HZ)) ew_device_log(&dev, 3, "PDM microphone failed to start");
#else
    next_sample_us = micros();
    ew_device_log(&dev, 2, "no PDM microphone: sampling A0 with analogRead (best effort)");
#endif
}

void loop()
{
    // Bytes from the host, in small chunks so sampling keeps its pace.
    uint8_t buf[64];
    size_t n = 0;
    while (n < sizeof buf && Serial.available() > 0) buf[n++] = (uint8_t)Serial.read();
    if (n) ew_device_feed(&dev, buf, n);
    ew_device_poll(&dev);

#if !EW_USE_PDM
    poll_analog();
#endif

    if (ready >= 0) {
        int8_t w = ready;
        uint64_t first_us = window_index * WINDOW * 1000000ull / RATE_HZ;
        ew_device_send_samples_i16(&dev, MIC_ID, first_us, WINDOW, windows[w], WINDOW);
        window_index += 1 + overruns;
        overruns = 0;
        ready = -1;
    }
}
