// A folder of generated images turned into thumbnails by a ProcessPoolExecutor: one submit() per image,
// each reported by as_completed the moment its worker is done (Python: the classic
// ProcessPoolExecutor + as_completed image resizer). Images are binary PPM files, so no image library is
// needed.
#include <unistd.h>

#include <cohort/cohort.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> rgb;
};

Image read_ppm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string magic;
  int max_value = 0;
  Image image;
  in >> magic >> image.width >> image.height >> max_value;
  in.get();
  if (!in || magic != "P6" || max_value != 255) throw std::runtime_error(path + ": not a binary PPM image");
  image.rgb.resize(static_cast<std::size_t>(image.width) * image.height * 3);
  in.read(reinterpret_cast<char*>(image.rgb.data()), static_cast<std::streamsize>(image.rgb.size()));
  if (!in) throw std::runtime_error(path + ": truncated image");
  return image;
}

void write_ppm(const std::string& path, const Image& image) {
  std::ofstream out(path, std::ios::binary);
  out << "P6\n" << image.width << ' ' << image.height << "\n255\n";
  out.write(reinterpret_cast<const char*>(image.rgb.data()), static_cast<std::streamsize>(image.rgb.size()));
}

/// A gradient with rings, different for every seed.
Image generate(int width, int height, int seed) {
  Image image{width, height, std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      auto* p = &image.rgb[(static_cast<std::size_t>(y) * width + x) * 3];
      const int dx = x - width / 2;
      const int dy = y - height / 2;
      p[0] = static_cast<std::uint8_t>(x * 255 / width);
      p[1] = static_cast<std::uint8_t>(y * 255 / height);
      p[2] = static_cast<std::uint8_t>(((dx * dx + dy * dy) / (40 + 10 * seed)) % 2 ? 255 : 0);
    }
  return image;
}

struct Thumbnail {
  std::string source;
  std::string path;
  int width = 0;
  int height = 0;
  int worker = 0;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(source, path, width, height, worker);
  }
};

/// Runs in a worker: reads the image, averages each 8x8 block into one pixel, writes "<name>.thumb.ppm".
Thumbnail make_thumbnail(const std::string& source) {
  constexpr int factor = 8;
  const Image image = read_ppm(source);
  Image thumb{image.width / factor, image.height / factor, {}};
  thumb.rgb.resize(static_cast<std::size_t>(thumb.width) * thumb.height * 3);
  for (int y = 0; y < thumb.height; ++y)
    for (int x = 0; x < thumb.width; ++x)
      for (int c = 0; c < 3; ++c) {
        int sum = 0;
        for (int v = 0; v < factor; ++v)
          for (int u = 0; u < factor; ++u)
            sum += image.rgb[((static_cast<std::size_t>(y) * factor + v) * image.width + x * factor + u) * 3 + c];
        thumb.rgb[(static_cast<std::size_t>(y) * thumb.width + x) * 3 + c] = static_cast<std::uint8_t>(sum / (factor * factor));
      }
  const fs::path out = fs::path(source).replace_extension(".thumb.ppm");
  write_ppm(out, thumb);
  return {source, out, thumb.width, thumb.height, ::getpid()};
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  const fs::path folder = fs::temp_directory_path() / ("cohort-thumbnails-" + std::to_string(::getpid()));
  fs::create_directories(folder);
  constexpr int count = 12;
  for (int i = 0; i < count; ++i)
    write_ppm(folder / ("image_" + std::to_string(i) + ".ppm"), generate(1600 + 80 * i, 1200, i));
  std::cout << "generated " << count << " images in " << folder.string() << std::endl;

  const auto start = std::chrono::steady_clock::now();
  std::vector<cohort::Future<Thumbnail>> futures;
  {
    cohort::ProcessPoolExecutor pool;  // cpu_count() workers
    for (int i = 0; i < count; ++i)
      futures.push_back(pool.submit(make_thumbnail, (folder / ("image_" + std::to_string(i) + ".ppm")).string()));
    int done = 0;
    for (auto& future : cohort::as_completed(futures)) {
      const Thumbnail t = future.get();
      std::cout << "[" << ++done << "/" << count << "] " << fs::path(t.source).filename().string() << " -> "
                << fs::path(t.path).filename().string() << " (" << t.width << "x" << t.height << ", worker " << t.worker
                << ")" << std::endl;
    }
  }  // the executor's destructor waits for its workers to exit
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();

  int thumbnails = 0;
  for (const auto& entry : fs::directory_iterator(folder))
    if (entry.path().string().ends_with(".thumb.ppm")) ++thumbnails;
  std::cout << thumbnails << " thumbnails written in " << ms << " ms" << std::endl;
  fs::remove_all(folder);
}
