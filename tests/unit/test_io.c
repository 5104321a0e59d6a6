/* test_io.c - the basic helpers every module uses: vk_grow makes room for
 * element N however far N jumps past the capacity (a caller that appends a
 * whole batch at once overran the array when it doubled only once), and
 * writes through the grown array stay inside it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vk.h"

static void test_grow_jumps(void **state)
{
    (void)state;
    uint32_t *a = NULL;
    size_t cap = 0;
    assert_int_equal(vk_grow((void **)&a, &cap, 0, sizeof *a, NULL), 0);
    assert_true(cap >= 1);
    size_t first = cap;
    /* a batch of 40 times the capacity at once */
    size_t n = first * 40;
    assert_int_equal(vk_grow((void **)&a, &cap, n, sizeof *a, NULL), 0);
    assert_true(cap > n);
    memset(a, 0xab, (n + 1) * sizeof *a); /* ASan reports any overrun */
    size_t before = cap;
    assert_int_equal(vk_grow((void **)&a, &cap, n, sizeof *a, NULL), 0);
    assert_int_equal(cap, before); /* room already: unchanged */
    vmdkit_error e;
    assert_int_equal(vk_grow((void **)&a, &cap, SIZE_MAX / 2, sizeof *a, &e), VMDKIT_ENOMEM);
    assert_int_equal(cap, before); /* a failure leaves the array as it was */
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_jumps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
