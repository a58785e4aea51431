// rhea_ffi_check: the C++ side of Rhea's parity test, a check of restrict_to_physical, and
// the C++ timing used by benchmarks/inference.py.
//
//   rhea_ffi_check parity MODEL(.pt|.pt2) EXPECTED.pt [TOLERANCE]
//       (a MODEL exported with --layout main is called in upstream main's layout)
//       EXPECTED.pt is a TorchScript container written by tests/cpp/make_parity_data.py
//       holding F4_initial and Python's F4_final, growthrate and stability. Prints the
//       largest differences and exits 1 if any exceeds TOLERANCE (default 1e-6): of ntot for
//       F4_final, relative for the growth rate, absolute for the stability.
//   rhea_ffi_check restrict
//       Checks ffi_restrict_to_physical on random and deliberately unphysical four-fluxes,
//       and the shape check of the wrappers.
//   rhea_ffi_check bench MODEL INPUTS.pt REPEATS
//       Median seconds per predict_all call on the cells F4_initial of INPUTS.pt (a container
//       as above, so that Python and C++ time the same cells), one thread.
#include "FFISubgridAOTI.h"
#include "FFISubgridModel.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace {

constexpr int NF = 3;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// sqrt(2) G_F (hbar c)^3 / hbar in cm^3/s: a main-layout model returns growth rates in cm^-3.
constexpr double NDENS_TO_INVSEC = 1.9255158167467008e-22;

// predict_all of a file exported with --layout main, called as upstream main's consumers call
// it (F4 [N, 2, NF, 4]); the outputs come back in Rhea's layout and in 1/s for the comparison.
std::function<FFIPrediction(const torch::Tensor&)> main_layout_predictor(
    std::shared_ptr<torch::jit::script::Module> module) {
  module->eval();
  return [module](const torch::Tensor& F4) {
    c10::InferenceMode guard;
    const auto F4_main = F4.to(torch::kFloat32).permute({0, 2, 3, 1}).contiguous();
    auto out = module->get_method("predict_all")({F4_main}).toTuple();
    return FFIPrediction{out->elements()[0].toTensor().permute({0, 3, 1, 2}),
                         out->elements()[1].toTensor().to(torch::kFloat64) * NDENS_TO_INVSEC,
                         out->elements()[2].toTensor()};
  };
}

// predict_all of either a TorchScript file or an AOTInductor package (by extension).
std::function<FFIPrediction(const torch::Tensor&)> load_predictor(const std::string& path) {
  if (ends_with(path, ".pt2")) {
    auto model = std::make_shared<FFISubgridAOTIModel<NF>>(path);
    return [model](const torch::Tensor& F4) { return model->predict_all(F4); };
  }
  auto module = std::make_shared<torch::jit::script::Module>(torch::jit::load(path));
  if (module->hasattr("rhea_layout") && module->attr("rhea_layout").toStringRef() == "main") {
    return main_layout_predictor(module);
  }
  auto model = std::make_shared<FFISubgridModel<NF>>(path);
  return [model](const torch::Tensor& F4) { return model->predict_all(F4); };
}

// Random physical four-fluxes [n, 4, 2, NF]: densities up to 1e33 cm^-3, flux factors < 0.9.
torch::Tensor random_F4(int64_t n) {
  auto N = torch::rand({n, 2, NF}, torch::kFloat64) * 1e33 + 1e30;
  auto direction = torch::randn({n, 3, 2, NF}, torch::kFloat64);
  direction = direction / direction.norm(2, 1, true);
  auto flux_factor = torch::rand({n, 1, 2, NF}, torch::kFloat64) * 0.9;
  auto F = direction * flux_factor * N.unsqueeze(1);
  return torch::cat({F, N.unsqueeze(1)}, 1);
}

int parity(const std::string& model_path, const std::string& expected_path, double tolerance) {
  auto expected = torch::jit::load(expected_path);
  const auto F4_initial = expected.attr("F4_initial").toTensor();
  const auto F4_expected = expected.attr("F4_final").toTensor().to(torch::kFloat64);
  const auto growth_expected = expected.attr("growthrate").toTensor().to(torch::kFloat64);
  const auto stability_expected = expected.attr("stability").toTensor().to(torch::kFloat64);

  auto predict = load_predictor(model_path);
  const auto got = predict(F4_initial);
  const auto ntot = F4_initial.select(1, 3).sum({1, 2}).to(torch::kFloat64);
  const auto dF4 = (got.F4_final.to(torch::kCPU, torch::kFloat64) - F4_expected).abs();
  const double F4_diff = (dF4.amax({1, 2, 3}) / ntot).max().item<double>();
  const double growth_diff = ((got.growthrate.to(torch::kCPU, torch::kFloat64) - growth_expected)
                                  .abs() / growth_expected.abs().clamp_min(1e-300))
                                 .max()
                                 .item<double>();
  const double stability_diff =
      (got.stability.to(torch::kCPU, torch::kFloat64) - stability_expected).abs().max().item<double>();
  std::printf("parity %s: %ld cells, max |dF4|/ntot = %.3e, max relative d(growth rate) = %.3e, "
              "max |d(stability)| = %.3e (tolerance %.1e)\n",
              model_path.c_str(), static_cast<long>(F4_initial.size(0)), F4_diff, growth_diff,
              stability_diff, tolerance);
  const bool ok = F4_diff <= tolerance && growth_diff <= tolerance && stability_diff <= tolerance;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

int check(bool condition, const char* what) {
  std::printf("  %-64s %s\n", what, condition ? "ok" : "FAILED");
  return condition ? 0 : 1;
}

int restrict_check() {
  torch::manual_seed(7);
  int failures = 0;
  const auto physical = random_F4(1000);
  failures += check(torch::equal(ffi_restrict_to_physical(physical), physical),
                    "physical four-fluxes come back bit for bit");

  // Push one species of each cell outside the light cone (flux factor 1.5) or below zero
  // density, keeping the flavor sums physical (otherwise no mixing can help).
  using torch::indexing::Slice;
  auto broken = physical.clone();
  const auto N_mu = 0.1 * broken.index({Slice(0, 500), 3, 0, 0});
  broken.index_put_({Slice(0, 500), 3, 0, 1}, N_mu);
  auto F_mu = broken.index({Slice(0, 500), Slice(0, 3), 0, 1});
  const auto unit = F_mu / F_mu.norm(2, 1, true);
  broken.index_put_({Slice(0, 500), Slice(0, 3), 0, 1}, 1.5 * unit * N_mu.unsqueeze(1));
  broken.index_put_({Slice(500, 1000), Slice(), 1, 2}, 0.0);
  broken.index_put_({Slice(500, 1000), 3, 1, 2}, -0.05 * broken.index({Slice(500, 1000), 3, 1, 0}));
  const auto before = ffi_dot4_Minkowski(broken, broken);
  failures += check(((before > 0) | (broken.select(1, 3) < 0)).flatten(1).any(1).all().item<bool>(),
                    "every test cell starts unphysical");
  const auto fixed = ffi_restrict_to_physical(broken);
  const auto N = fixed.select(1, 3);
  const auto Fmag = fixed.narrow(1, 0, 3).norm(2, 1);
  const auto ntot = broken.select(1, 3).sum({1, 2}).view({-1, 1, 1});
  failures += check((N >= -1e-12 * ntot).all().item<bool>(), "N >= 0 after the fix");
  failures += check((Fmag <= N + 1e-12 * ntot).all().item<bool>(), "|F| <= N after the fix");
  const auto sums_before = broken.sum(3);
  const auto sums_after = fixed.sum(3);
  const double drift = ((sums_after - sums_before).abs().amax({1, 2}) / ntot.view({-1})).max().item<double>();
  std::printf("  flavor-summed four-flux drift / ntot = %.2e\n", drift);
  failures += check(drift < 1e-12, "flavor sums of nu and nubar conserved to 1e-12 of ntot");
  failures += check(!torch::equal(fixed, broken), "the corrected tensor is returned");

  // A cell whose flavor sum itself is outside the light cone cannot be mixed into shape.
  auto hopeless = physical.index({Slice(0, 1)}).clone();
  hopeless.index_put_({0, Slice(0, 3), 0, Slice()}, 0.0);
  hopeless.index_put_({0, 0, 0, Slice()}, 2.0 * hopeless.index({0, 3, 0, Slice()}));
  failures += check(torch::equal(ffi_restrict_to_physical(hopeless), hopeless),
                    "a cell with an unphysical flavor sum is left as it is");

  bool rejected = false;
  try {
    ffi_check_F4_shape(torch::zeros({5, 4, 2, 2}), NF);
  } catch (const std::invalid_argument&) {
    rejected = true;
  }
  failures += check(rejected, "an F4 of the wrong shape is rejected");
  std::printf("%s\n", failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}

int bench(const std::string& model_path, const std::string& inputs_path, int repeats) {
  at::set_num_threads(1);
  auto predict = load_predictor(model_path);
  const auto F4 = torch::jit::load(inputs_path).attr("F4_initial").toTensor();
  for (int i = 0; i < 3; ++i) predict(F4);  // warm-up (TorchScript profiling runs)
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const auto out = predict(F4);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  std::printf("median_seconds %.9e\n", seconds[seconds.size() / 2]);
  return 0;
}

}  // namespace

int main(int argc, char* argv[]) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "parity" && (argc == 4 || argc == 5)) {
      return parity(argv[2], argv[3], argc == 5 ? std::atof(argv[4]) : 1e-6);
    }
    if (mode == "restrict" && argc == 2) return restrict_check();
    if (mode == "bench" && argc == 5) return bench(argv[2], argv[3], std::atoi(argv[4]));
  } catch (const std::exception& exc) {
    std::fprintf(stderr, "rhea_ffi_check: %s\n", exc.what());
    return 1;
  }
  std::fprintf(stderr,
               "usage: %s parity MODEL EXPECTED [TOLERANCE] | restrict | bench MODEL INPUTS REPEATS\n",
               argv[0]);
  return 2;
}
