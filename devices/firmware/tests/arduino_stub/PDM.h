/* The PDM library's interface as the sketch uses it (stub for host runs). */
#ifndef EW_PDM_STUB_H
#define EW_PDM_STUB_H

#include <stddef.h>

class StubPDM {
  public:
    void onReceive(void (*fn)(void));
    void setBufferSize(int n);
    int begin(int channels, long rate);
    int available();
    int read(void *buf, size_t n);
};
extern StubPDM PDM;

#endif
