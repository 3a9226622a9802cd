/* Just enough of the Arduino API to compile and run ew_vad_node.ino on the host (tests/sketch_run.cpp). */
#ifndef EW_ARDUINO_STUB_H
#define EW_ARDUINO_STUB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HIGH 1
#define LOW 0
#define OUTPUT 1
#define LED_BUILTIN 13
#define A0 14

unsigned long millis(void);
unsigned long micros(void);
void pinMode(int pin, int mode);
void digitalWrite(int pin, int value);
int analogRead(int pin);

class StubSerial {
  public:
    void begin(unsigned long baud);
    int available();
    int read();
    size_t write(const uint8_t *p, size_t n);
};
extern StubSerial Serial;

#endif
