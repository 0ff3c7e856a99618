/* fuzz_envphp.c - libFuzzer target for the env.php reader and the derivation of checks from it.
 *
 * Any input either parses into a tree or yields one line "env.php:LINE:COL: what"; a tree is
 * then walked by mh_magento_derive(), which either derives checks or explains itself. Neither
 * may crash, leak or leave an error without a message. */
#include "mh_envphp.h"
#include "mh_magento.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[MH_ENVPHP_ERROR_MAX];
    struct mh_php_node *root =
        mh_envphp_parse((const char *)data, size, "env.php", err, sizeof err);
    if (!root) {
        if (!err[0] || strchr(err, '\n'))
            abort();
        return 0;
    }
    static struct mh_magento m;
    struct mh_magento_opts opts = {.mysql_socket = "/run/mysqld/mysqld.sock",
                                   .credentials_magento = size % 2 == 0};
    if (mh_magento_derive(root, "env.php", &opts, &m, err, sizeof err) < 0 && !err[0])
        abort();
    mh_magento_clear(&m);
    mh_php_free(root);
    return 0;
}
