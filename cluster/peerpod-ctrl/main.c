/* peerpod-ctrl: see ctrl-main.c. */
#include "ctrl-main.h"

int main(int argc, char **argv)
{
    return peerpod_ctrl_main(argc, argv);
}
