#include "ceredis.h"
#include "ctl/ctl.h"
int verb_policy(int argc, char *argv[]) { return CTL_EXIT_ERROR; }
