% Learns the 64x64 LatLRR projection that mmif's `latlrr` ships as its default
% (crates/mmif-classic/src/data/latlrr_l8.f64, little-endian float64, row-major), the way VIFB's
% methods/LatLRR/train_models.m learns its L_8 (https://github.com/xingchenzhang/VIFB, not part of
% mmif; its own training images and L_8.mat carry no licence), on other images: all 8x8 distinct
% patches of the 25 TNO infrared and 25 visible test images shipped by the CDDFuse repository (TNO,
% CC BY 4.0; first channel, in file order, patches column by column as im2col 'distinct' takes them,
% partial border blocks left out), 400 of them evenly spaced (VIFB: 1200 drawn by randperm; fewer here, as
% every step of the solver takes an SVD of a columns x columns matrix), solved by VIFB's latent_lrr.m with
% lambda = 0.4.
% Usage (from the repository root, CDDFuse's test_img/ at data/test_img, VIFB at $VIFB_DIR):
%   octave-cli crates/mmif-classic/tests/data/vifb/gen/learn_projection.m
pkg load image
addpath(fullfile(getenv('VIFB_DIR'), 'methods', 'LatLRR'));
unit = 8; col = 400; lambda = 0.4;
B = [];
for kind = {'ir', 'vi'}
  for k = 1:25
    img = imread(sprintf('data/test_img/TNO/%s/%02d.png', kind{1}, k));
    img = im2double(img(:, :, 1));
    [h, w] = size(img);
    img = img(1:floor(h / unit) * unit, 1:floor(w / unit) * unit);
    B = [B, im2col(img, [unit, unit], 'distinct')];
  end
end
n = size(B, 2);
pick = floor((0:col - 1) * n / col) + 1;
printf('%d patches, %d picked\n', n, numel(pick));
tic;
[Z, L, E] = latent_lrr(B(:, pick), lambda);
toc
f = fopen('crates/mmif-classic/src/data/latlrr_l8.f64', 'w', 'ieee-le');
fwrite(f, L.', 'double');  % row-major
fclose(f);
save('-ascii', '-double', 'data/lat/latlrr_l8_learnt.txt', 'L');
