/* Sensor sources of the host firmware: synthetic audio, audio from a WAV/raw file, an IMU pattern. */
#ifndef EW_SYNTH_H
#define EW_SYNTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct audio_src {
    int16_t *file;      /* samples of --wav FILE, or NULL for the synthetic signal */
    size_t file_len;
    size_t pos;         /* next sample index (file position, or time in samples) */
    uint32_t noise;     /* PRNG state */
    double phase;       /* of the synthetic voice's fundamental */
} audio_src;

/* Synthetic audio at 16 kHz: 2 s of a voice-like signal (a gliding fundamental with harmonics,
   syllable-rate envelope), then 2 s of quiet noise, repeating. Deterministic. */
void audio_synth_init(audio_src *a);

/* Audio from a WAV file (PCM 16-bit mono 16 kHz) or a raw file of int16 LE samples at 16 kHz.
   Returns 0, or -1 with a reason in err. The file repeats at its end. */
int audio_file_init(audio_src *a, const char *path, char *err, size_t errlen);

void audio_read(audio_src *a, int16_t *out, size_t n);

/* Skips n samples (time that passed while the firmware could not send). */
void audio_skip(audio_src *a, uint64_t n);

/* n samples x 6 channels (ax, ay, az in 1/16384 g; gx, gy, gz in 1/131 deg/s) of a board
   that rocks slowly on a table, starting at sample index `t` of a 100 Hz stream. */
void imu_read(uint64_t t, int16_t *out, size_t n);

#endif
