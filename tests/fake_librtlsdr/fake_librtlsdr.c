/* A librtlsdr stand-in for tests: one fake R820T dongle, serial FAKE0001, that streams
 * the cu8 recording named by FAKE_RTLSDR_IQ through rtlsdr_read_async (one reused
 * buffer, like librtlsdr's USB buffers) at the sample rate set, in real time. After the
 * recording the band is quiet (constant 127) and samples keep coming, as from a dongle.
 * While the file named by FAKE_RTLSDR_UNPLUG exists the dongle is gone: rtlsdr_open fails
 * and a running read_async returns an error. The signal goes on meanwhile: on reopening
 * the stream resumes where the recording has got to in wall time, not where it stopped.
 * FAKE_RTLSDR_COUNT=0 reports no dongle attached.
 * Settings made through the API are appended to FAKE_RTLSDR_LOG (one "name value" a line). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SERIAL "FAKE0001"
#define NOT_FOUND (-5)

typedef void (*read_async_cb_t)(unsigned char *buf, uint32_t len, void *ctx);

typedef struct {
    uint32_t center_hz, rate_hz, xtal, tuner_xtal, bw;
    int ppm, gain;
    volatile int cancel;
} fake_dev;

static const int gains[] = {0, 9, 14, 27, 37, 77, 87, 125, 144, 157, 166, 197, 207, 229, 254,
                            280, 297, 328, 338, 364, 372, 386, 402, 421, 434, 439, 445, 480, 496};
static double stream_t0 = -1; /* CLOCK_MONOTONIC seconds of the stream's first sample */
static long stream_pos = 0;    /* bytes of the stream delivered or missed while unplugged */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int unplugged(void) {
    const char *p = getenv("FAKE_RTLSDR_UNPLUG");
    return p && access(p, F_OK) == 0;
}

static int note(const char *name, long value) {
    const char *p = getenv("FAKE_RTLSDR_LOG");
    if (p) {
        FILE *f = fopen(p, "a");
        if (f) { fprintf(f, "%s %ld\n", name, value); fclose(f); }
    }
    return 0;
}

static uint32_t attached(void) {
    const char *p = getenv("FAKE_RTLSDR_COUNT");
    return p && strcmp(p, "0") == 0 ? 0 : 1;
}

uint32_t rtlsdr_get_device_count(void) { return attached(); }
const char *rtlsdr_get_device_name(uint32_t index) { return index < attached() ? "Fake RTL2832U" : ""; }
int rtlsdr_get_device_usb_strings(uint32_t index, char *manufact, char *product, char *serial) {
    if (index >= attached()) return -1;
    if (manufact) strcpy(manufact, "sensord tests");
    if (product) strcpy(product, "fake dongle");
    if (serial) strcpy(serial, SERIAL);
    return 0;
}
int rtlsdr_get_index_by_serial(const char *serial) {
    if (!serial) return -1;
    return attached() && strcmp(serial, SERIAL) == 0 ? 0 : -3;
}
int rtlsdr_open(void **dev, uint32_t index) {
    if (index >= attached() || unplugged()) return NOT_FOUND;
    *dev = calloc(1, sizeof(fake_dev));
    return *dev ? 0 : -1;
}
int rtlsdr_close(void *dev) { free(dev); return 0; }
int rtlsdr_set_xtal_freq(void *d, uint32_t rtl, uint32_t tuner) {
    ((fake_dev *)d)->xtal = rtl; ((fake_dev *)d)->tuner_xtal = tuner; return 0;
}
int rtlsdr_get_xtal_freq(void *d, uint32_t *rtl, uint32_t *tuner) {
    if (rtl) *rtl = ((fake_dev *)d)->xtal;
    if (tuner) *tuner = ((fake_dev *)d)->tuner_xtal;
    return 0;
}
int rtlsdr_get_usb_strings(void *d, char *m, char *p, char *s) { (void)d; return rtlsdr_get_device_usb_strings(0, m, p, s); }
int rtlsdr_set_center_freq(void *d, uint32_t hz) { ((fake_dev *)d)->center_hz = hz; return note("center_freq", hz); }
uint32_t rtlsdr_get_center_freq(void *d) { return ((fake_dev *)d)->center_hz; }
int rtlsdr_set_freq_correction(void *d, int ppm) { ((fake_dev *)d)->ppm = ppm; return note("freq_correction", ppm); }
int rtlsdr_get_freq_correction(void *d) { return ((fake_dev *)d)->ppm; }
int rtlsdr_get_tuner_type(void *d) { (void)d; return 5; /* R820T */ }
int rtlsdr_get_tuner_gains(void *d, int *out) {
    (void)d;
    int n = (int)(sizeof gains / sizeof gains[0]);
    if (out) memcpy(out, gains, sizeof gains);
    return n;
}
int rtlsdr_set_tuner_gain(void *d, int tenth_db) { ((fake_dev *)d)->gain = tenth_db; return note("tuner_gain", tenth_db); }
int rtlsdr_get_tuner_gain(void *d) { return ((fake_dev *)d)->gain; }
int rtlsdr_set_tuner_bandwidth(void *d, uint32_t bw) { ((fake_dev *)d)->bw = bw; return 0; }
int rtlsdr_set_and_get_tuner_bandwidth(void *d, uint32_t bw, uint32_t *applied, int apply) {
    if (applied) *applied = bw;
    if (apply) ((fake_dev *)d)->bw = bw;
    return 0;
}
int rtlsdr_set_tuner_if_gain(void *d, int stage, int gain) { (void)d; (void)stage; (void)gain; return 0; }
int rtlsdr_set_tuner_gain_mode(void *d, int manual) { (void)d; return note("tuner_gain_mode", manual); }
int rtlsdr_set_sample_rate(void *d, uint32_t rate) { ((fake_dev *)d)->rate_hz = rate; return note("sample_rate", rate); }
uint32_t rtlsdr_get_sample_rate(void *d) { return ((fake_dev *)d)->rate_hz; }
int rtlsdr_set_testmode(void *d, int on) { (void)d; (void)on; return 0; }
int rtlsdr_set_agc_mode(void *d, int on) { (void)d; return note("agc_mode", on); }
int rtlsdr_set_direct_sampling(void *d, int on) { (void)d; (void)on; return 0; }
int rtlsdr_get_direct_sampling(void *d) { (void)d; return 0; }
int rtlsdr_set_offset_tuning(void *d, int on) { (void)d; (void)on; return 0; }
int rtlsdr_get_offset_tuning(void *d) { (void)d; return 0; }
int rtlsdr_set_bias_tee(void *d, int on) { (void)d; return note("bias_tee", on); }
int rtlsdr_set_dithering(void *d, int on) { (void)d; (void)on; return 0; }
int rtlsdr_set_gpio_bit(void *d, uint8_t gpio, int val) { (void)d; (void)gpio; (void)val; return 0; }
int rtlsdr_get_gpio_bit(void *d, uint8_t gpio, int *val) { (void)d; (void)gpio; if (val) *val = 0; return 0; }
int rtlsdr_set_gpio_byte(void *d, int val) { (void)d; (void)val; return 0; }
int rtlsdr_get_gpio_byte(void *d, int *val) { (void)d; if (val) *val = 0; return 0; }
int rtlsdr_set_gpio_output(void *d, uint8_t gpio) { (void)d; (void)gpio; return 0; }
int rtlsdr_set_gpio_input(void *d, uint8_t gpio) { (void)d; (void)gpio; return 0; }
int rtlsdr_set_gpio_status(void *d, int *status) { (void)d; if (status) *status = 0; return 0; }
int rtlsdr_reset_buffer(void *d) { (void)d; return 0; }

/* len bytes of the stream at stream_pos: the recording, then a quiet band; -1 without it. */
static int stream_chunk(unsigned char *buf, int len) {
    const char *path = getenv("FAKE_RTLSDR_IQ");
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) return -1;
    int n = 0;
    if (fseek(f, stream_pos, SEEK_SET) == 0) n = (int)fread(buf, 1, (size_t)len, f);
    fclose(f);
    memset(buf + n, 0x7f, (size_t)(len - n));
    stream_pos += len;
    return len;
}

int rtlsdr_read_sync(void *d, void *buf, int len, int *n_read) {
    (void)d;
    if (unplugged()) return NOT_FOUND;
    int n = stream_chunk(buf, len);
    if (n < 0) return -1;
    if (n_read) *n_read = n;
    return 0;
}

/* Bytes the signal has produced since the stream began (the dongle's sample clock). */
static long produced_bytes(const fake_dev *dev) {
    double rate_hz = dev->rate_hz ? dev->rate_hz : 2.4e6;
    return 2 * (long)((now_s() - stream_t0) * rate_hz);
}

int rtlsdr_read_async(void *d, read_async_cb_t cb, void *ctx, uint32_t buf_num, uint32_t buf_len) {
    fake_dev *dev = d;
    (void)buf_num;
    if (buf_len == 0) buf_len = 16 * 32 * 512;
    unsigned char *buf = malloc(buf_len);
    if (!buf) return -1;
    if (stream_t0 < 0) {
        stream_t0 = now_s();
    } else {
        long produced = produced_bytes(dev); /* what aired while the dongle was away is lost */
        if (produced > stream_pos) stream_pos = produced;
    }
    int rc = 0;
    dev->cancel = 0;
    while (!dev->cancel) {
        if (unplugged()) { rc = NOT_FOUND; break; }
        long missing = stream_pos + (long)buf_len - produced_bytes(dev);
        if (missing > 0) { /* the buffer fills in real time; look at the plug every 5 ms */
            double wait_s = missing / 2.0 / (dev->rate_hz ? dev->rate_hz : 2.4e6);
            struct timespec idle = {0, (long)(1e9 * (wait_s < 0.005 ? wait_s : 0.005))};
            nanosleep(&idle, NULL);
            continue;
        }
        if (stream_chunk(buf, (int)buf_len) < 0) { rc = -1; break; }
        cb(buf, buf_len, ctx);
        memset(buf, 0x7f, buf_len); /* the buffer is reused: stale data must not survive */
    }
    free(buf);
    return rc;
}
int rtlsdr_wait_async(void *d, read_async_cb_t cb, void *ctx) { return rtlsdr_read_async(d, cb, ctx, 0, 0); }
int rtlsdr_cancel_async(void *d) { ((fake_dev *)d)->cancel = 1; return 0; }
