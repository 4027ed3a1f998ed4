// Shared by the fuzz targets: the readers under test take a path, so each input is written to an
// in-memory file (memfd) and handed over as /proc/self/fd/N — no disk I/O, nothing left behind.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace xgrad_fuzz {

class MemFile {
 public:
  MemFile() : fd_(memfd_create("xgrad-fuzz", 0)) {
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  // Replaces the file's content with [data, data + size).
  const std::string& write(const std::uint8_t* data, std::size_t size) {
    if (ftruncate(fd_, 0) != 0) std::abort();
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<std::size_t>(n);
    }
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

// An xgrad::Error is the expected outcome of a malformed input; its message must still say which
// function failed. Anything else (another exception, a crash, a sanitizer report) is a finding.
inline void expect_named(const char* what, const char* fragment) {
  if (std::string(what).find(fragment) == std::string::npos) {
    std::fprintf(stderr, "error message does not name '%s': %s\n", fragment, what);
    std::abort();
  }
}

}  // namespace xgrad_fuzz
