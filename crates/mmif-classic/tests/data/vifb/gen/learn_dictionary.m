% Learns the 64x256 sparse-representation dictionary that mmif's `lp_sr` and `rp_sr` ship as their
% default (crates/mmif-classic/src/data/sr_dict_8x256.f64: little-endian float64, 256 atoms of 64
% values one after the other, each atom an 8x8 patch in column-major order, unit length).
% VIFB's methods/{LP_SR,RP_SR,NSCT_SR} load sparsefusion/Dictionary/D_100000_256_8.mat, a 64x256
% K-SVD dictionary learnt from 100,000 8x8 patches (https://github.com/xingchenzhang/VIFB, not part
% of mmif; the dictionary, its training images and the toolbox carry no licence that allows
% redistribution), so mmif learns its own with the same shape and the same learner on other images:
% * images: the TNO (CC BY 4.0) and RoadScene (MIT) test images of the CDDFuse repository, infrared
%   and visible, gray (rgb2gray for colour files), 0..255; pairs that might show a VIFB scene are
%   left out (thumbnail correlation > 0.8 with a VIFB image: TNO 15, RoadScene FLIR_00977,
%   FLIR_04269, FLIR_04688, FLIR_05955);
% * 100,000 8x8 patches at random positions (Octave's rand('state', 17)), spread evenly over the
%   images, each with its mean removed (sparse_fusion.m codes mean-free patches);
% * K-SVD (R. Rubinstein's KSVD-Box v13 + OMP-Box v10, the versions VIFB ships, MEX compiled with
%   mkoctfile --mex), 2-D overcomplete-DCT initial dictionary (odct2dict(8, 256), 16x16 separable cosines), sparsity target
%   Tdata = TDATA atoms per patch, ITERS iterations (environment variables, defaults 5 and 30).
% Usage (from the repository root; CDDFuse's test_img/ at data/test_img; KSVD-Box with its OMP-Box
% MEX files at $KSVDBOX):
%   octave-cli crates/mmif-classic/tests/data/vifb/gen/learn_dictionary.m
pkg load image
addpath(getenv('KSVDBOX')); addpath(fullfile(getenv('KSVDBOX'), 'ompbox'));
tdata = str2double(getenv('TDATA')); if isnan(tdata), tdata = 5; end
iters = str2double(getenv('ITERS')); if isnan(iters), iters = 30; end
npatch = 100000; p = 8;
skip = {'TNO/ir/15.png', 'TNO/vi/15.png', 'RoadScene/ir/FLIR_00977.jpg', 'RoadScene/vi/FLIR_00977.jpg', ...
        'RoadScene/ir/FLIR_04269.jpg', 'RoadScene/vi/FLIR_04269.jpg', 'RoadScene/ir/FLIR_04688.jpg', ...
        'RoadScene/vi/FLIR_04688.jpg', 'RoadScene/ir/FLIR_05955.jpg', 'RoadScene/vi/FLIR_05955.jpg'};
files = {};
for set = {'TNO', 'RoadScene'}
  for kind = {'ir', 'vi'}
    d = dir(fullfile('data/test_img', set{1}, kind{1}, '*.*'));
    for k = 1:numel(d)
      if d(k).isdir, continue; end
      rel = fullfile(set{1}, kind{1}, d(k).name);
      if any(strcmp(rel, skip)), continue; end
      files{end + 1} = rel;
    end
  end
end
printf('%d images\n', numel(files));
rand('state', 17);
X = zeros(p * p, npatch);
per = diff(round(linspace(0, npatch, numel(files) + 1)));
col = 0;
for k = 1:numel(files)
  img = imread(fullfile('data/test_img', files{k}));
  if size(img, 3) == 3, img = rgb2gray(img); end
  img = double(img);
  [h, w] = size(img);
  for j = 1:per(k)
    y = floor(rand() * (h - p + 1)) + 1;
    x = floor(rand() * (w - p + 1)) + 1;
    v = reshape(img(y:y + p - 1, x:x + p - 1), [], 1);
    col = col + 1;
    X(:, col) = v - mean(v);
  end
end
params.data = X;
params.Tdata = tdata;
params.dictsize = 256;
params.iternum = iters;
params.initdict = odct2dict(p, 256);
params.memusage = 'high';
tic;
[D, Gamma, err] = ksvd(params, 'irt');
toc
printf('final RMSE %.4f\n', err(end));
out = getenv('OUT'); if isempty(out), out = 'crates/mmif-classic/src/data/sr_dict_8x256.f64'; end
f = fopen(out, 'w', 'ieee-le');
fwrite(f, D, 'double');  % column-major: atom after atom
fclose(f);
