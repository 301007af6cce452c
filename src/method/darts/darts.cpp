#include "probnas/method/darts/darts.h"

namespace probnas {

Darts::Darts(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key)
    : SoftmaxMethod(std::move(net), options, key) {}

}  // namespace probnas
