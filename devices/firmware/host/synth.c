/* Sensor sources of the host firmware. See synth.h. */
#include "synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE 16000.0
#define TWO_PI 6.28318530717958647692

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

void audio_synth_init(audio_src *a)
{
    memset(a, 0, sizeof *a);
    a->noise = 0x1234567u;
}

static int16_t clamp16(double v)
{
    if (v > 32767.0) return 32767;
    if (v < -32768.0) return -32768;
    return (int16_t)lround(v);
}

static double synth_one(audio_src *a)
{
    double t = (double)a->pos / RATE;
    double cycle = fmod(t, 4.0);
    double noise = ((double)(xorshift(&a->noise) & 0xFFFF) / 65535.0 - 0.5) * 60.0;
    double v = noise;
    if (cycle < 2.0) {
        /* Voiced: a fundamental gliding 110..190 Hz, six harmonics with a falling spectrum,
           syllables at about 4 Hz. */
        double f0 = 150.0 + 40.0 * sin(TWO_PI * 0.7 * t);
        double env = 0.5 - 0.5 * cos(TWO_PI * 4.0 * cycle);
        double s = 0.0;
        int h;
        a->phase += TWO_PI * f0 / RATE;
        if (a->phase > TWO_PI) a->phase -= TWO_PI;
        for (h = 1; h <= 6; h++) s += sin(a->phase * h) / h;
        v += 6000.0 * env * s;
    }
    a->pos++;
    return v;
}

void audio_read(audio_src *a, int16_t *out, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (a->file) {
            out[i] = a->file[a->pos];
            a->pos = (a->pos + 1) % a->file_len;
        } else {
            out[i] = clamp16(synth_one(a));
        }
    }
}

void audio_skip(audio_src *a, uint64_t n)
{
    if (a->file) a->pos = (size_t)((a->pos + n) % a->file_len);
    else a->pos += (size_t)n;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

int audio_file_init(audio_src *a, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long size;
    const uint8_t *data;
    size_t data_len, i;
    audio_synth_init(a);
    if (!f) {
        snprintf(err, errlen, "cannot open %s", path);
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }
    buf = (uint8_t *)malloc((size_t)size + 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(buf);
        snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }
    fclose(f);
    data = buf;
    data_len = (size_t)size;
    if (size >= 12 && memcmp(buf, "RIFF", 4) == 0 && memcmp(buf + 8, "WAVE", 4) == 0) {
        /* Walk the chunks: need fmt (PCM, 1 channel, 16 kHz, 16 bit) and data. */
        size_t at = 12;
        int fmt_ok = 0;
        data = NULL;
        while (at + 8 <= (size_t)size) {
            uint32_t len = le32(buf + at + 4);
            const uint8_t *body = buf + at + 8;
            if (len > (size_t)size - at - 8) len = (uint32_t)((size_t)size - at - 8);
            if (memcmp(buf + at, "fmt ", 4) == 0 && len >= 16) {
                uint16_t format = le16(body), channels = le16(body + 2), bits = le16(body + 14);
                uint32_t rate = le32(body + 4);
                if ((format != 1 && format != 0xFFFE) || channels != 1 || rate != 16000 || bits != 16) {
                    snprintf(err, errlen,
                             "%s: need PCM 16-bit mono 16000 Hz, got format %u, %u channel(s), %u Hz, %u bit",
                             path, format, channels, (unsigned)rate, bits);
                    free(buf);
                    return -1;
                }
                fmt_ok = 1;
            } else if (memcmp(buf + at, "data", 4) == 0) {
                data = body;
                data_len = len;
            }
            at += 8 + (size_t)len + (len & 1u);
        }
        if (!fmt_ok || !data) {
            snprintf(err, errlen, "%s: WAV without a fmt or data chunk", path);
            free(buf);
            return -1;
        }
    }
    if (data_len < 2) {
        snprintf(err, errlen, "%s: no samples", path);
        free(buf);
        return -1;
    }
    a->file_len = data_len / 2;
    a->file = (int16_t *)malloc(a->file_len * sizeof(int16_t));
    if (!a->file) {
        free(buf);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < a->file_len; i++) a->file[i] = (int16_t)le16(data + 2 * i);
    free(buf);
    return 0;
}

void imu_read(uint64_t t, int16_t *out, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        double s = (double)(t + i) / 100.0;
        double tilt = 0.15 * sin(TWO_PI * 0.25 * s);
        double roll = 0.10 * sin(TWO_PI * 0.4 * s + 1.0);
        int16_t *o = out + 6 * i;
        o[0] = clamp16(16384.0 * sin(tilt));
        o[1] = clamp16(16384.0 * sin(roll));
        o[2] = clamp16(16384.0 * cos(tilt) * cos(roll));
        o[3] = clamp16(131.0 * 0.15 * 360.0 * 0.25 * cos(TWO_PI * 0.25 * s));
        o[4] = clamp16(131.0 * 0.10 * 360.0 * 0.4 * cos(TWO_PI * 0.4 * s + 1.0));
        o[5] = 0;
    }
}
