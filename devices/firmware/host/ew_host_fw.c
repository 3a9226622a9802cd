/*
 * ew-host-fw: the edgewarden firmware built for the host. It opens a pseudo-terminal, prints the
 * slave path on stdout, and behaves like a board on the other end: Hello at start, answers to
 * HelloRequest/Command/Ping/Result, a 16 kHz microphone in 512-sample windows and a 100 Hz IMU.
 * Actuator changes (the LED) are printed on stderr.
 *
 *   ew-host-fw [--link PATH] [--wav FILE] [--no-stream] [--exit-on-eof] [--quiet]
 *
 * The device logic is the same library an MCU runs (src/); only the port functions are here.
 */
#define _XOPEN_SOURCE 600
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../src/ew_device.h"
#include "synth.h"

#define AUDIO_WINDOW 512u
#define AUDIO_RATE 16000u
#define IMU_RATE 100u
#define IMU_BATCH 10u /* 100 ms per batch */

enum { MIC_ID = 1, IMU_ID = 2, LED_ID = 1, RELAY_ID = 2 };

static const ew_sensor_desc SENSORS[] = {
    {MIC_ID, {(const uint8_t *)"mic", 3}, EW_SAMPLE_INT16_LE, AUDIO_RATE, 1},
    {IMU_ID, {(const uint8_t *)"imu", 3}, EW_SAMPLE_INT16_LE, IMU_RATE, 6},
};
static const ew_actuator_desc ACTUATORS[] = {
    {LED_ID, {(const uint8_t *)"led", 3}, EW_ACTUATOR_LED},
    {RELAY_ID, {(const uint8_t *)"relay", 5}, EW_ACTUATOR_RELAY},
};
static const uint8_t UNIQUE_ID[8] = {'e', 'w', 'h', 'o', 's', 't', 0x00, 0x01};
static const ew_device_info INFO = {
    "ew-host-fw", "0.1.0", UNIQUE_ID, sizeof UNIQUE_ID, SENSORS, 2, ACTUATORS, 2,
};

static volatile sig_atomic_t g_stop = 0;
static int g_master = -1;
static int g_dropping = 0;      /* the frame being written could not be sent: skip to its end */
static unsigned long g_dropped_frames = 0;
static struct timespec g_boot;
static int g_quiet = 0;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static uint64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)(t.tv_sec - g_boot.tv_sec) * 1000000u + (uint64_t)((t.tv_nsec - g_boot.tv_nsec) / 1000);
}

/* Waits until the master can take bytes, at most `ms`. */
static int writable(int ms)
{
    struct pollfd p;
    p.fd = g_master;
    p.events = POLLOUT;
    p.revents = 0;
    return poll(&p, 1, ms) > 0 && (p.revents & POLLOUT);
}

/*
 * Port: write. The line is like a USB CDC endpoint: when nobody reads, bytes back up and are
 * lost. A frame that cannot go out whole is cut and its delimiter still sent, so the host
 * resynchronises at once and counts one bad frame.
 */
static void port_write(void *ctx, const uint8_t *p, size_t n)
{
    int waited = 0;
    (void)ctx;
    if (g_dropping) {
        if (n == 1 && p[0] == 0) {
            g_dropping = 0;
            if (writable(50)) (void)!write(g_master, p, 1);
        }
        return;
    }
    while (n > 0) {
        ssize_t w = write(g_master, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && waited < 200 && writable(20)) {
            waited += 20;
            continue;
        }
        g_dropping = !(n == 1 && p[0] == 0);
        g_dropped_frames++;
        return;
    }
}

static uint32_t port_millis(void *ctx)
{
    (void)ctx;
    return (uint32_t)(now_us() / 1000u);
}

static uint32_t port_actuator_set(void *ctx, const ew_actuator_desc *a, int32_t value)
{
    (void)ctx;
    if (a->kind == EW_ACTUATOR_LED || a->kind == EW_ACTUATOR_RELAY)
        fprintf(stderr, "%.*s: %s\n", (int)a->name.len, (const char *)a->name.p, value ? "on" : "off");
    else
        fprintf(stderr, "%.*s: %ld\n", (int)a->name.len, (const char *)a->name.p, (long)value);
    return 0;
}

static void port_on_result(void *ctx, const ew_result *r)
{
    (void)ctx;
    if (!g_quiet)
        fprintf(stderr, "result: %.*s label=%u score=%.3f\n", (int)r->model_name.len,
                (const char *)r->model_name.p, (unsigned)r->label, (double)r->score);
}

static int make_raw(int fd)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return -1;
    cfmakeraw(&t);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    return tcsetattr(fd, TCSANOW, &t);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: ew-host-fw [--link PATH] [--wav FILE] [--no-stream] [--exit-on-eof] [--quiet]\n"
            "  --link PATH    also create a symlink PATH to the pty (removed at exit)\n"
            "  --wav FILE     stream this audio (WAV PCM 16-bit mono 16 kHz, or raw int16 LE) in a loop\n"
            "  --no-stream    send no sensor batches (only answer requests)\n"
            "  --exit-on-eof  exit when stdin closes (a supervisor that dies takes us with it)\n"
            "  --quiet        no result lines on stderr (actuator changes are always printed)\n");
}

int main(int argc, char **argv)
{
    const char *link_path = NULL, *wav = NULL;
    int stream = 1, exit_on_eof = 0, slave = -1, i;
    char *name;
    audio_src audio;
    static ew_device dev;
    ew_port port;
    uint64_t next_audio, next_imu, audio_index = 0, imu_index = 0;
    struct sigaction sa;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--link") && i + 1 < argc) link_path = argv[++i];
        else if (!strcmp(argv[i], "--wav") && i + 1 < argc) wav = argv[++i];
        else if (!strcmp(argv[i], "--no-stream")) stream = 0;
        else if (!strcmp(argv[i], "--exit-on-eof")) exit_on_eof = 1;
        else if (!strcmp(argv[i], "--quiet")) g_quiet = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "ew-host-fw: unknown argument %s\n", argv[i]);
            usage();
            return 2;
        }
    }
    if (wav) {
        char err[256];
        if (audio_file_init(&audio, wav, err, sizeof err) != 0) {
            fprintf(stderr, "ew-host-fw: %s\n", err);
            return 2;
        }
    } else {
        audio_synth_init(&audio);
    }

    g_master = posix_openpt(O_RDWR | O_NOCTTY);
    if (g_master < 0 || grantpt(g_master) != 0 || unlockpt(g_master) != 0 || !(name = ptsname(g_master))) {
        perror("ew-host-fw: pseudo-terminal");
        return 1;
    }
    name = strdup(name);
    /* Raw before the first byte: no echo, no CR/LF mapping, 8-bit clean. Holding the slave open
       keeps the line up while the host is not connected (no hangup on the master). */
    slave = open(name, O_RDWR | O_NOCTTY);
    if (slave < 0 || make_raw(slave) != 0 || make_raw(g_master) != 0) {
        perror("ew-host-fw: raw mode");
        return 1;
    }
    fcntl(g_master, F_SETFL, fcntl(g_master, F_GETFL) | O_NONBLOCK);
    if (link_path) {
        struct stat st;
        if (lstat(link_path, &st) == 0 && S_ISLNK(st.st_mode)) unlink(link_path);
        if (symlink(name, link_path) != 0) {
            perror("ew-host-fw: --link");
            return 1;
        }
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    printf("%s\n", name);
    fflush(stdout);

    clock_gettime(CLOCK_MONOTONIC, &g_boot);
    port.write = port_write;
    port.millis = port_millis;
    port.actuator_set = port_actuator_set;
    port.on_result = port_on_result;
    port.ctx = NULL;
    ew_device_init(&dev, &INFO, &port);
    ew_device_start(&dev);
    fprintf(stderr, "led: off\n");
    next_audio = (uint64_t)AUDIO_WINDOW * 1000000u / AUDIO_RATE;
    next_imu = (uint64_t)IMU_BATCH * 1000000u / IMU_RATE;

    while (!g_stop) {
        struct pollfd fds[2];
        int nfds = 1, timeout;
        uint64_t now = now_us();
        fds[0].fd = g_master;
        fds[0].events = POLLIN;
        fds[0].revents = 0;
        if (exit_on_eof) {
            fds[1].fd = 0;
            fds[1].events = POLLIN;
            fds[1].revents = 0;
            nfds = 2;
        }
        if (stream) {
            /* A window is "recorded" every 32 ms; after a stall, skip ahead rather than burst. */
            if (now >= next_audio) {
                int16_t win[AUDIO_WINDOW];
                if (now - next_audio > 10u * 32000u) {
                    uint64_t behind = (now - next_audio) / 32000u;
                    next_audio += behind * 32000u;
                    audio_index += behind * AUDIO_WINDOW;
                    audio_skip(&audio, behind * AUDIO_WINDOW);
                }
                audio_read(&audio, win, AUDIO_WINDOW);
                if (writable(0))
                    ew_device_send_samples_i16(&dev, MIC_ID, audio_index * 1000000u / AUDIO_RATE,
                                               AUDIO_WINDOW, win, AUDIO_WINDOW);
                audio_index += AUDIO_WINDOW;
                next_audio += (uint64_t)AUDIO_WINDOW * 1000000u / AUDIO_RATE;
            }
            if (now >= next_imu) {
                int16_t imu[IMU_BATCH * 6];
                imu_read(imu_index, imu, IMU_BATCH);
                if (writable(0))
                    ew_device_send_samples_i16(&dev, IMU_ID, imu_index * 1000000u / IMU_RATE,
                                               IMU_BATCH, imu, IMU_BATCH * 6);
                imu_index += IMU_BATCH;
                next_imu += (uint64_t)IMU_BATCH * 1000000u / IMU_RATE;
                if (now > next_imu + 1000000u) next_imu = now;
            }
            now = now_us();
            {
                uint64_t next = next_audio < next_imu ? next_audio : next_imu;
                timeout = next > now ? (int)((next - now + 999u) / 1000u) : 0;
            }
        } else {
            timeout = 50;
        }
        if (poll(fds, (nfds_t)nfds, timeout) < 0) {
            if (errno == EINTR) continue;
            perror("ew-host-fw: poll");
            break;
        }
        if (fds[0].revents & POLLIN) {
            uint8_t buf[512];
            ssize_t n = read(g_master, buf, sizeof buf);
            if (n > 0) ew_device_feed(&dev, buf, (size_t)n);
        }
        if (nfds == 2 && (fds[1].revents & (POLLIN | POLLHUP))) {
            char tmp[64];
            if (read(0, tmp, sizeof tmp) <= 0) break;
        }
        ew_device_poll(&dev);
    }

    if (link_path) unlink(link_path);
    if (!g_quiet)
        fprintf(stderr,
                "ew-host-fw: stopped (rx frames %u, crc errors %u, oversize %u, malformed %u; tx frames %u, "
                "dropped %lu)\n",
                dev.rx.stats.frames, dev.rx.stats.crc_errors, dev.rx.stats.oversize, dev.rx.stats.malformed,
                dev.stats.tx_frames, g_dropped_frames);
    close(slave);
    close(g_master);
    free(name);
    free(audio.file);
    return 0;
}
