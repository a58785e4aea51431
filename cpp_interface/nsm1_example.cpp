// nsm1_example: predict the NSM1 test cell with an exported Rhea model and compare with the
// full-simulation (Emu) result (Richers et al. 2024, arXiv:2409.04405).
//
//   nsm1_example model.pt [cpu|cuda]      TorchScript export (rhea export RUN)
//   nsm1_example model.pt2                AOTInductor package (rhea export RUN --format aoti)
#include "FFISubgridAOTI.h"
#include "FFISubgridModel.h"

#include <cstdio>
#include <exception>
#include <string>

namespace {

constexpr int NF = 3;

// The NSM1 cell: number densities (cm^-3) and flux/N ratios of nu_e, nubar_e and each heavy.
torch::Tensor nsm1_F4() {
  const double n_heavy = 19.65e32 / 4.0;
  const double N[2][NF] = {{14.22e32, n_heavy, n_heavy}, {19.15e32, n_heavy, n_heavy}};
  const double flux_over_N[2][NF][3] = {
      {{0.0974, 0.0421, -0.1343}, {-0.0216, 0.0743, -0.5354}, {-0.0216, 0.0743, -0.5354}},
      {{0.0723, 0.0313, -0.3446}, {-0.0216, 0.0743, -0.5354}, {-0.0216, 0.0743, -0.5354}}};
  auto F4 = torch::zeros({1, 4, 2, NF}, torch::kFloat64);
  auto acc = F4.accessor<double, 4>();
  for (int s = 0; s < 2; ++s) {
    for (int a = 0; a < NF; ++a) {
      for (int i = 0; i < 3; ++i) acc[0][i][s][a] = flux_over_N[s][a][i] * N[s][a];
      acc[0][3][s][a] = N[s][a];
    }
  }
  return F4;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

int main(int argc, char* argv[]) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s MODEL.pt|MODEL.pt2 [cpu|cuda]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const torch::Device device(argc == 3 ? std::string(argv[2]) : std::string("cpu"));
  try {
    const auto F4_initial = nsm1_F4();
    FFIPrediction prediction;
    if (ends_with(path, ".pt2")) {
      FFISubgridAOTIModel<NF> model(path, device);
      prediction = model.predict_all(F4_initial);
    } else {
      FFISubgridModel<NF> model(path, device);
      prediction = model.predict_all(F4_initial);
    }
    const auto F4_final =
        ffi_restrict_to_physical(prediction.F4_final.to(torch::kCPU, torch::kFloat64));
    const auto N = F4_final.select(1, 3);  // [1, 2, NF]
    const double emu_N[2][NF] = {{9.9546e32, 7.8547e32, 6.2329e32},
                                 {1.4881e33, 7.8547e32, 6.2329e32}};
    std::printf("NSM1 cell, model %s\n", path.c_str());
    std::printf("  stability (probability stable): %.4f\n",
                prediction.stability.to(torch::kCPU).item<double>());
    std::printf("  growth rate: %.4e 1/s\n", prediction.growthrate.to(torch::kCPU).item<double>());
    std::printf("  %-8s %14s %14s %14s\n", "species", "N initial", "N model", "N Emu");
    const char* names[2][NF] = {{"nu_e", "nu_mu", "nu_tau"}, {"nubar_e", "nubar_mu", "nubar_tau"}};
    for (int s = 0; s < 2; ++s) {
      for (int a = 0; a < NF; ++a) {
        std::printf("  %-8s %14.5e %14.5e %14.5e\n", names[s][a],
                    F4_initial[0][3][s][a].item<double>(), N[0][s][a].item<double>(), emu_N[s][a]);
      }
    }
  } catch (const std::exception& exc) {
    std::fprintf(stderr, "nsm1_example: %s\n", exc.what());
    return 1;
  }
  return 0;
}
