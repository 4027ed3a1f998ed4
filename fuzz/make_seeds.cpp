// Writes the seed corpora of fuzz/corpus/ (run once; the files are kept in the repository):
//   make_seeds <fuzz/corpus>
// Each seed is a small valid input, so that the fuzzer starts from the formats' real structure.
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <xgrad.hpp>

using namespace xgrad;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<unsigned char>;

void write(const fs::path& path, const Bytes& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
void write(const fs::path& path, const std::string& text) { write(path, Bytes(text.begin(), text.end())); }

Bytes read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

Bytes gzip(const Bytes& data) {
  z_stream zs{};
  deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  Bytes out(deflateBound(&zs, data.size()) + 32);
  zs.next_in = const_cast<Bytef*>(data.data());
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// An IDX file: magic 0 0 type ndim, big-endian dims, then `payload` (already big-endian).
Bytes idx(unsigned char type, const std::vector<std::uint32_t>& dims, const Bytes& payload) {
  Bytes out{0, 0, type, static_cast<unsigned char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(d >> s));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Bytes counting(std::size_t n, unsigned step = 1) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<unsigned char>(i * step);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <fuzz/corpus directory>\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  const fs::path tmp = fs::temp_directory_path() / "xgrad_make_seeds.safetensors";

  // ---- IDX: every type code, 1 to 3 dims; plain for fuzz_idx and fuzz_idx_gz, gzipped for fuzz_idx.
  const std::vector<std::pair<std::string, Bytes>> idx_seeds{
      {"u8_2x3x2", idx(0x08, {2, 3, 2}, counting(12, 21))},
      {"i8_5", idx(0x09, {5}, Bytes{0x80, 0xff, 0, 1, 0x7f})},
      {"i16_2x2", idx(0x0B, {2, 2}, Bytes{0x80, 0, 0xff, 0xff, 0, 1, 0x7f, 0xff})},
      {"i32_3", idx(0x0C, {3}, Bytes{0, 0, 0, 7, 0xff, 0xff, 0xff, 0xf9, 0x7f, 0xff, 0xff, 0xff})},
      {"f32_2", idx(0x0D, {2}, Bytes{0x3f, 0x80, 0, 0, 0xc0, 0x49, 0x0f, 0xdb})},         // 1, -π
      {"f64_1x1", idx(0x0E, {1, 1}, Bytes{0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18})},  // π
      {"u8_empty_0x4", idx(0x08, {0, 4}, {})},
  };
  for (const auto& [name, bytes] : idx_seeds) {
    write(root / "idx" / (name + ".idx"), bytes);
    write(root / "idx_gz" / (name + ".idx"), bytes);
  }
  write(root / "idx" / "u8_2x3x2.idx.gz", gzip(idx_seeds[0].second));
  write(root / "idx" / "f32_2.idx.gz", gzip(idx_seeds[4].second));

  // ---- CSV: the first byte selects the options (bits 0-2 delimiter: 0 ',', 1 ';', 2 tab, 3 space, 4 '|';
  // bits 3-4 skip_rows).
  write(root / "csv" / "comma.csv", std::string("\x00", 1) + "1,2,3\n4.5,-6e2,+7\n");
  write(root / "csv" / "header_semicolon.csv", std::string("\x09", 1) + "a;b\n1;2\n nan ; inf \n\n3;4\r\n");
  write(root / "csv" / "tab.csv", std::string("\x02", 1) + "1\t2\n3\t4\n");
  write(root / "csv" / "one_cell.csv", std::string("\x00", 1) + "0x1p3\n");

  // ---- safetensors: what nn and optim save, plus metadata and float64 (named .seed: the repository
  // ignores *.safetensors).
  {
    manual_seed(1);
    nn::Linear layer(2, 3);
    layer.save(tmp.string());
    write(root / "safetensors" / "linear_2x3.seed", read(tmp));
    save_safetensors(tmp.string(), {{"x", tensor({1.0, 2.0}, kFloat64)}, {"s", tensor(3.0)}, {"e", zeros({0, 2})}},
                     {{"format", "pt"}});
    write(root / "safetensors" / "f64_scalar_empty_meta.seed", read(tmp));
    save_safetensors(tmp.string(), {});
    write(root / "safetensors" / "no_tensors.seed", read(tmp));
  }

  // ---- Optimizer state: the parameters fuzz_optim_state.cpp builds (3×2 f32, 3 f32, 0-d f64), after
  // two steps, for each optimizer kind; the first byte selects the kind (0 SGD, 1 Adam, 2 AdamW,
  // 3 RMSprop), as in the target.
  auto params = [] {
    return std::vector<Tensor>{ones({3, 2}).requires_grad_(), zeros({3}).requires_grad_(),
                               tensor(0.5, kFloat64).requires_grad_()};
  };
  auto save_state = [&](optim::Optimizer& opt, std::vector<Tensor>& ps, unsigned char kind, const std::string& name) {
    for (int step = 0; step < 2; ++step) {
      for (Tensor& p : ps) p.set_grad(full_like(p, 0.5 + step));
      opt.step();
    }
    opt.save(tmp.string());
    Bytes bytes{kind};
    const Bytes file = read(tmp);
    bytes.insert(bytes.end(), file.begin(), file.end());
    write(root / "optim_state" / (name + ".state"), bytes);
  };
  {
    auto ps = params();
    optim::SGD opt(ps, {.lr = 0.1, .momentum = 0.9});
    save_state(opt, ps, 0, "sgd_momentum");
  }
  {
    auto ps = params();
    optim::Adam opt(ps, {.lr = 0.01, .amsgrad = true});
    save_state(opt, ps, 1, "adam_amsgrad");
  }
  {
    auto ps = params();
    optim::AdamW opt(ps, {.lr = 0.01});
    save_state(opt, ps, 2, "adamw");
  }
  {
    auto ps = params();
    optim::RMSprop opt(ps, {.lr = 0.01, .momentum = 0.5});
    save_state(opt, ps, 3, "rmsprop_momentum");
  }
  fs::remove(tmp);

  // ---- fit's checkpoints: the run fuzz_checkpoint.cpp loads into (Linear(2, 3), SGD with momentum,
  // StepLR, EarlyStopping with restore_best_weights), one mid-epoch and one at an epoch's end; the
  // first byte is the mode (0 checks the CRC, 1 skips it), as in the target.
  {
    const fs::path dir = fs::temp_directory_path() / "xgrad_make_seeds_checkpoints";
    fs::remove_all(dir);
    manual_seed(2);
    data::DataLoader loader(data::TensorDataset(randn({6, 2}), tensor({0, 1, 2, 0, 1, 2})),
                            {.batch_size = 2, .shuffle = true, .seed = 3});
    auto model = std::make_shared<nn::Linear>(2, 3);
    optim::SGD sgd(model->parameters(), {.lr = 0.1, .momentum = 0.9});
    optim::StepLR step(sgd, 2, 0.5);
    auto stop = std::make_shared<EarlyStopping>(EarlyStoppingOptions{.monitor = "loss", .patience = 2,
                                                                     .restore_best_weights = true});
    nn::CrossEntropyLoss loss;
    fit(model, sgd, loss, loader,
        {.epochs = 2, .verbose = false, .scheduler = &step, .callbacks = {stop}, .checkpoint_dir = dir.string(),
         .checkpoint_every_steps = 4});
    // Kept: after step 4 (mid-epoch 2) and step 6 (end of epoch 2).
    for (const fs::path& file : {dir / "ckpt-000000000004.safetensors", dir / "ckpt-000000000006.safetensors"}) {
      const Bytes content = read(file);
      for (unsigned char mode : {0, 1}) {
        Bytes bytes{mode};
        bytes.insert(bytes.end(), content.begin(), content.end());
        write(root / "checkpoint" / (file.stem().string() + "_mode" + std::to_string(mode) + ".seed"), bytes);
      }
    }
    fs::remove_all(dir);
  }
  return 0;
}
