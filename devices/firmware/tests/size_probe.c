/* RAM of the library state: one ew_device holds every buffer (receiver, transmitter block). */
#include "../src/ew_device.h"

ew_device ew_probe_device; /* .bss of this object = sizeof(ew_device) */

#ifdef EW_SIZE_MAIN
#include <stdio.h>

int main(void)
{
    printf("{\"ew_device\": %u, \"ew_rx\": %u, \"ew_tx\": %u, \"rx_buf\": %u, \"max_rx_payload\": %u}\n",
           (unsigned)sizeof(ew_device), (unsigned)sizeof(ew_rx), (unsigned)sizeof(ew_tx),
           (unsigned)sizeof ew_probe_device.rx_buf, (unsigned)EW_MAX_RX_PAYLOAD);
    return 0;
}
#endif
