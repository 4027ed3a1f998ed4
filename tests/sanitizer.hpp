// XGRAD_UNDER_SANITIZER is 1 when the test is built with ASan or TSan, under GCC (__SANITIZE_*__) or
// clang (__has_feature). Sanitizers replace malloc, which changes what memory tests can assert.
#pragma once

#define XGRAD_UNDER_SANITIZER 0
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#undef XGRAD_UNDER_SANITIZER
#define XGRAD_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#undef XGRAD_UNDER_SANITIZER
#define XGRAD_UNDER_SANITIZER 1
#endif
#endif
