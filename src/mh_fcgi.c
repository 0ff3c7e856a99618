/* mh_fcgi.c - placeholder; the FastCGI client lands with the PHP-FPM check. */
#include "mh_types.h"
