/* Test helper: writes the libvirt provider's in-memory cidata ISO for a
 * user-data file, so process-user-data can be tested against it.
 * Usage: make-cidata-iso USER-DATA-FILE OUTPUT-ISO */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cidata-iso.h"
#include "fs.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make-cidata-iso USER-DATA-FILE OUTPUT-ISO\n");
        return 2;
    }
    caa_error *err = NULL;
    char *ud = NULL;
    size_t ud_len = 0;
    uint8_t *iso = NULL;
    size_t iso_len = 0;
    if (caa_read_file(argv[1], 1 << 20, 0, &ud, &ud_len, &err) < 0 ||
        caa_cidata_iso_build_seed("podvm-test-12345678", ud, ud_len, &iso, &iso_len, &err) < 0 ||
        caa_write_file_atomic(argv[2], iso, iso_len, 0644, &err) < 0) {
        fprintf(stderr, "make-cidata-iso: %s\n", caa_error_msg(err));
        caa_error_free(err);
        free(ud);
        free(iso);
        return 1;
    }
    free(ud);
    free(iso);
    return 0;
}
