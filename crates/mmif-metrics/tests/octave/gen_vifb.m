% Generates crates/mmif-metrics/tests/data/vifb: small inputs (crops of VIFB images, synthetic
% edge cases) and the values of VIFB's metrics/metrics*.m on them, run by GNU Octave.
% Documentation only: the tests read the generated files, never this script.
%   octave-cli gen_vifb.m VIFB_DIR OUT_DIR
% VIFB_DIR is a checkout of xingchenzhang/VIFB (its metrics/ folder is put on the path);
% the shims in tools/octave_shims provide freqspace and blkproc (absent from Octave) and MATLAB's
% rgb2gray; run from the repository root.
pkg load image
args = argv();
vifb = args{1}; out = args{2};
addpath(fullfile(vifb, 'metrics'));
addpath(fileparts(mfilename('fullpath')));   % write_pnm, write_cases
addpath(fullfile(pwd, 'tools', 'octave_shims'));   % shims last added = first on the path
rd = @(p) imread(fullfile(vifb, p));
vi = rd('input/VI/carLight.jpg'); ir = rd('input/IR/carLight.jpg'); fu = rd('output/fused_images/carLight_ADF.jpg');
vi2 = rd('input/VI/fight.jpg'); ir2 = rd('input/IR/fight.jpg'); fu2 = rd('output/fused_images/fight_CBF.jpg');
ir = ir(:,:,1); ir2 = ir2(:,:,1);
crop = @(X, r, c, h, w) X(r:r+h-1, c:c+w-1, :);
cases = {};
% colour visible, gray infrared, colour fused (VIFB's per-channel path), odd size
cases{end+1} = {'colour_gray_ir', crop(vi,200,300,37,53), crop(ir,200,300,37,53), crop(fu,200,300,37,53)};
% colour infrared with unequal channels, colour fused
i3 = crop(ir2,100,150,29,41); i3 = cat(3, i3, circshift(i3, 1, 2), 255 - i3);
cases{end+1} = {'colour_colour_ir', crop(vi2,100,150,29,41), i3, crop(fu2,100,150,29,41)};
% gray fused image with a colour visible image (rgb2gray inside the metrics)
cases{end+1} = {'gray_fused', crop(vi,120,80,33,47), crop(ir,120,80,33,47), crop(fu,120,80,33,47)(:,:,2)};
% all gray, larger than one Qcv block in both directions
cases{end+1} = {'all_gray', crop(vi2,40,60,35,50)(:,:,1), crop(ir2,40,60,35,50), crop(fu2,40,60,35,50)(:,:,3)};
% constant fused image, zero fused image, constant source
g1 = crop(vi,10,10,20,24)(:,:,1); g2 = crop(ir,10,10,20,24);
cases{end+1} = {'const_fused', g1, g2, uint8(100 * ones(20, 24))};
cases{end+1} = {'zero_fused', g1, g2, uint8(zeros(20, 24))};
cases{end+1} = {'const_source', uint8(7 * ones(20, 24)), g2, crop(fu,10,10,20,24)(:,:,1)};
% smaller than SSIM's 11x11 window; one pixel
cases{end+1} = {'tiny', crop(vi,300,300,8,9), crop(ir,300,300,8,9), crop(fu,300,300,8,9)};
cases{end+1} = {'one_pixel', vi(5,5,1), ir(5,5), fu(5,5,1)};
names = {'Cross_entropy','Entropy','Mutinf','Psnr','Avg_gradient','Edge_intensity','Qabf','Variance','Spatial_frequency','Rmse','Ssim','Qcb','Qcv'};
write_cases(out, cases, names, {'vi', 'ir'});
